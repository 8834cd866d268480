--[[ lws.http: HTTP routes and static files on a WebSocket server's port.

  server:route("GET", "/api/items/:id", function(req, res)
    res:json({ id = req.params.id })
  end)
  server:static("/", "public/")

Design criteria:
 - One port serves WebSocket upgrades, routes and files; the C core frames
   requests (Content-Length or chunked, smuggling refused), reads bodies
   under max_body_size (413 while reading), answers from HTTP_WRITEABLE
   and keeps a deferred answer alive until its deadline (request_timeout,
   or res:set_timeout(seconds)): then res:on("timeout", fn), else 503.
 - A handler may answer later: keep res and call res:send() from a timer
   or another connection's message (long-polling). res:on("abort", fn)
   tells when the client went away first.
 - Unknown path 404, known path with another method 405 (with Allow), a
   server with no routes at all answers plain HTTP with 426 like ws.
 - Static files never leave their directory: ".." and dot-segments are
   refused, symlinks are resolved and must stay inside, dotfiles are 404.
]]
local core = require "lws.core"
local emitter = require "lws.emitter"
local options = require "lws.options"

local M = {}

local function header_ok(k, v)
	return type(k) == "string" and not k:find("[^%w%-!#$%%&'*+.^_`|~]") and k ~= "" and
		not tostring(v):find("[\r\n%z]")
end

local function http_date(t)
	return os.date("!%a, %d %b %Y %H:%M:%S GMT", t)
end
M.http_date = http_date

M.mime = {
	html = "text/html; charset=utf-8", htm = "text/html; charset=utf-8",
	css = "text/css; charset=utf-8", js = "text/javascript; charset=utf-8",
	mjs = "text/javascript; charset=utf-8", json = "application/json",
	map = "application/json", txt = "text/plain; charset=utf-8",
	svg = "image/svg+xml", png = "image/png", jpg = "image/jpeg", jpeg = "image/jpeg",
	gif = "image/gif", ico = "image/x-icon", webp = "image/webp", wasm = "application/wasm",
	woff = "font/woff", woff2 = "font/woff2", ttf = "font/ttf", xml = "application/xml",
	pdf = "application/pdf", mp3 = "audio/mpeg", mp4 = "video/mp4", webm = "video/webm",
}

---------------------------------------------------------------------------
-- the response object (lws.request userdata + Lua fields)

local res_fields = setmetatable({}, { __mode = "k" })
local function fields(res)
	local f = res_fields[res]
	if not f then
		f = { status = 200, headers = {} }
		res_fields[res] = f
	end
	return f
end

local methods = core.request_methods

function methods.fields(res) return fields(res) end
emitter.mixin(methods)

--- res:status(code) -> res
function methods.status(res, code)
	if math.type(code) ~= "integer" or code < 100 or code > 999 then
		error("bad argument #1 to 'status' (HTTP status expected)", 2)
	end
	fields(res).status = code
	return res
end

--- res:header(name, value) -> res (repeatable names such as Set-Cookie add up)
function methods.header(res, name, value)
	if not header_ok(name, value) then
		error("bad argument #1 to 'header' (invalid header " .. tostring(name) .. ")", 2)
	end
	local h = fields(res).headers
	h[#h + 1] = name .. ": " .. tostring(value) .. "\r\n"
	return res
end

local function has(res, name)
	name = name:lower() .. ":"
	for _, line in ipairs(fields(res).headers) do
		if line:sub(1, #name):lower() == name then return true end
	end
	return false
end

--- res:send([body[, content_type]]) -> true | nil, err, code
function methods.send(res, body, ctype)
	body = body == nil and "" or body
	if type(body) ~= "string" then
		error("bad argument #1 to 'send' (string expected, got " .. type(body) .. ")", 2)
	end
	local f = fields(res)
	if ctype then methods.header(res, "Content-Type", ctype)
	elseif not has(res, "content-type") and f.status ~= 204 and f.status ~= 304 then
		methods.header(res, "Content-Type", "text/plain; charset=utf-8")
	end
	local ok, err, code = res:respond(f.status, table.concat(f.headers), body)
	res_fields[res] = nil
	return ok, err, code
end

local cjson
--- res:json(value[, status]) -> true | nil, err, code
function methods.json(res, value, status)
	cjson = cjson or require "cjson"
	if status then methods.status(res, status) end
	return methods.send(res, cjson.encode(value), "application/json")
end

--- res:redirect(location[, status]) 302 by default
function methods.redirect(res, location, status)
	methods.status(res, status or 302)
	methods.header(res, "Location", location)
	return methods.send(res, "redirecting to " .. location)
end

--- res:error(status[, message]): a plain-text error answer
function methods.error(res, status, message)
	methods.status(res, status)
	return methods.send(res, message or tostring(status))
end

---------------------------------------------------------------------------
-- routes

local function compile(path)
	if not path:find("[:*]") then return nil end
	local names = {}
	local pat = "^" .. path:gsub("[%^%$%(%)%%%.%[%]%+%-%?]", "%%%0")
		:gsub(":([%w_]+)", function(n) names[#names + 1] = n; return "([^/]+)" end)
	if pat:sub(-1) == "*" then
		pat = pat:sub(1, -2) .. "(.*)"
		names[#names + 1] = "*"
	end
	return pat .. "$", names
end

local function server_route(srv, method, path, fn)
	if type(method) ~= "string" then error("bad argument #1 to 'route' (method expected)", 2) end
	if type(path) ~= "string" or path:sub(1, 1) ~= "/" then
		error("bad argument #2 to 'route' (path starting with / expected)", 2)
	end
	if type(fn) ~= "function" and not (getmetatable(fn) or {}).__call then
		error("bad argument #3 to 'route' (function expected, got " .. type(fn) .. ")", 2)
	end
	local f = srv:fields()
	method = method:upper()
	local pat, names = compile(path)
	if pat then
		f._patterns = f._patterns or {}
		f._patterns[#f._patterns + 1] = { method = method, pat = pat, names = names, fn = fn, path = path }
	else
		f._routes = f._routes or {}
		local r = f._routes[path] or {}
		r[method] = fn
		f._routes[path] = r
	end
	return srv
end

local function allow_of(r)
	local list = {}
	for m in pairs(r) do list[#list + 1] = m end
	if r.GET and not r.HEAD then list[#list + 1] = "HEAD" end
	table.sort(list)
	return table.concat(list, ", ")
end

local function pick(r, method)
	return r[method] or (method == "HEAD" and r.GET) or r["*"]
end

---------------------------------------------------------------------------
-- static files

-- index: the file a directory serves; cache_control: its Cache-Control;
-- headers: added to every answer; gzip: serve .gz siblings / compress
local static_spec = {
	index = "string", cache_control = "string", headers = "table", gzip = "boolean",
}

local function static_mount(srv, prefix, dir, opts)
	if type(prefix) ~= "string" or prefix:sub(1, 1) ~= "/" then
		error("bad argument #1 to 'static' (URL prefix starting with / expected)", 2)
	end
	if type(dir) ~= "string" then error("bad argument #2 to 'static' (directory expected)", 2) end
	opts = options.check(options.table_arg(opts, "static", 3, 2), static_spec, 2)
	local real, err = core.realpath(dir)
	if not real then error("static: " .. err, 2) end
	local st = core.stat(real)
	if not st or st.type ~= "directory" then error("static: not a directory: " .. dir, 2) end
	if prefix:sub(-1) ~= "/" then prefix = prefix .. "/" end
	local f = srv:fields()
	f._static = f._static or {}
	table.insert(f._static, { prefix = prefix, root = real, index = opts.index or "index.html",
		headers = opts.headers or {}, cache = opts.cache_control or "no-cache",
		gzip = opts.gzip ~= false, gzipped = {}, n_gzipped = 0 })
	table.sort(f._static, function(a, b) return #a.prefix > #b.prefix end)
	return srv
end

-- text-like types worth compressing (images, fonts, archives are not)
local function compressible(ctype)
	return ctype:find("^text/") or ctype:find("javascript") or ctype:find("json")
		or ctype:find("svg") or ctype:find("xml") or ctype:find("wasm")
end

--- gzip_body(req, res, body, ctype[, cache, key]) -> body: gzipped (with
-- Content-Encoding and Vary set) when the client takes gzip, the type is
-- text-like and the body is 1 KiB or more; cache[key] keeps the result
function M.gzip_body(req, res, body, ctype, cache, key)
	if #body < 1024 or not compressible(ctype) then return body end
	res:header("Vary", "Accept-Encoding")
	local ae = req.headers["accept-encoding"]
	if not ae or not ae:lower():find("gzip", 1, true) then return body end
	local z = cache and cache[key]
	if not z then
		z = core.gzip(body, 6)
		if cache then cache[key] = z end
	end
	if #z >= #body then return body end
	res:header("Content-Encoding", "gzip")
	return z
end

local function read_file(path)
	local fh, err = io.open(path, "rb")
	if not fh then return nil, err end
	local data = fh:read("a")
	fh:close()
	return data
end

local function inside(real, root)
	return real == root or real:sub(1, #root + 1) == root .. "/"
end

-- returns true if it answered
local function serve_static(m, req, res)
	if req.path .. "/" == m.prefix then
		-- the mount itself without its slash: relative links in its
		-- index would resolve one level up (nginx and serve-static do this)
		res:redirect(m.prefix .. (req.url:match("%?.*$") or ""), 301)
		return true
	end
	local rel = req.path:sub(#m.prefix + 1)
	if rel:find("%z") or rel:find("\\", 1, true) or rel:find("%%") then
		res:error(400, "bad path")
		return true
	end
	for seg in rel:gmatch("[^/]+") do
		if seg == ".." or seg == "." then
			res:error(403, "forbidden")
			return true
		end
		if seg:sub(1, 1) == "." then   -- dotfiles (.git, .env) are not served
			res:error(404, "not found")
			return true
		end
	end
	local path = m.root .. "/" .. rel
	local real = core.realpath(path)
	if not real then res:error(404, "not found") return true end
	if not inside(real, m.root) then
		res:error(403, "forbidden")   -- a symlink pointing out
		return true
	end
	local st = core.stat(real)
	if st and st.type == "directory" then
		if rel ~= "" and rel:sub(-1) ~= "/" then
			res:redirect(req.path .. "/" .. (req.url:match("%?.*$") or ""), 301)
			return true
		end
		real = core.realpath(real .. "/" .. m.index)
		if not real or not inside(real, m.root) then res:error(404, "not found") return true end
		st = core.stat(real)
	end
	if not st or st.type ~= "file" then res:error(404, "not found") return true end
	local etag = ('W/"%x-%x"'):format(st.size, st.mtime)
	res:header("ETag", etag)
	res:header("Last-Modified", http_date(st.mtime))
	res:header("Cache-Control", m.cache)
	res:header("X-Content-Type-Options", "nosniff")
	for k, v in pairs(m.headers) do res:header(k, v) end
	local inm = req.headers["if-none-match"]
	if inm then
		for tag in inm:gmatch("[^,%s]+") do
			if tag == etag or tag == "*" or tag == etag:sub(3) then
				res:status(304)
				res:send("")
				return true
			end
		end
	end
	local data, err = read_file(real)
	if not data then res:error(403, "cannot read: " .. tostring(err)) return true end
	local ext = real:match("%.([%w]+)$")
	local ctype = M.mime[ext and ext:lower() or ""] or "application/octet-stream"
	if m.gzip then
		-- compressed copies of up to 256 files per mount, keyed by path and
		-- version; a full cache starts again rather than growing
		if m.n_gzipped >= 256 then m.gzipped, m.n_gzipped = {}, 0 end
		local key = real .. "\0" .. etag
		local had = m.gzipped[key]
		data = M.gzip_body(req, res, data, ctype, #data <= 4 << 20 and m.gzipped or nil, key)
		if not had and m.gzipped[key] then m.n_gzipped = m.n_gzipped + 1 end
	end
	res:send(data, ctype)
	return true
end

---------------------------------------------------------------------------
-- dispatch of one request

function M.handle(srv, res, req)
	local f = srv:fields()
	local path, method = req.path, req.method
	-- exact routes
	local r = f._routes and f._routes[path]
	if r then
		local fn = pick(r, method)
		if fn then return fn(req, res) end
		res:header("Allow", allow_of(r))
		return res:error(405, "method not allowed")
	end
	-- patterns, in the order they were added
	if f._patterns then
		local allowed
		for _, p in ipairs(f._patterns) do
			local caps = { path:match(p.pat) }
			if caps[1] then
				if p.method == method or p.method == "*" or (method == "HEAD" and p.method == "GET") then
					req.params = {}
					for i, name in ipairs(p.names) do req.params[name] = caps[i] end
					return p.fn(req, res)
				end
				allowed = allowed or {}
				allowed[p.method] = true
			end
		end
		if allowed then
			res:header("Allow", allow_of(allowed))
			return res:error(405, "method not allowed")
		end
	end
	-- static files
	if f._static then
		for _, m in ipairs(f._static) do
			if path:sub(1, #m.prefix) == m.prefix or path .. "/" == m.prefix then
				if method ~= "GET" and method ~= "HEAD" then
					res:header("Allow", "GET, HEAD")
					return res:error(405, "method not allowed")
				end
				return serve_static(m, req, res)
			end
		end
	end
	if not f._routes and not f._patterns and not f._static then
		return res:error(426, "Upgrade Required")   -- a WebSocket-only server, like ws
	end
	return res:error(404, "not found")
end

function M.install(server_methods)
	server_methods.route = server_route
	server_methods.static = static_mount
	for _, m in ipairs { "get", "post", "put", "delete", "patch", "options" } do
		server_methods[m] = function(srv, path, fn) return server_route(srv, m:upper(), path, fn) end
	end
end

return M
