-- The Socket.IO Admin UI (the ui/dist of npm's @socket.io/admin-ui 0.5),
-- served by this lws server with its static route, nothing from a CDN:
--
--   local admin_ui = require "admin_ui"   -- examples/admin/ on package.path
--   admin_ui.mount(server, "/admin-ui/", "node_modules")
--   sio:instrument { auth = false }       -- or basic, with a bcrypt hash
--
-- then open http://HOST:PORT/admin-ui/ and connect it to http://HOST:PORT
-- (namespace /admin). The page's index.html asks two CDNs for its fonts
-- (Roboto, and the Material Design Icons it draws its buttons with): the
-- copy served here points at npm's @fontsource/roboto and @mdi/font
-- instead, mounted beside it. Everything else is ui/dist's own files.
local M = {}

local function read(path)
	local f = assert(io.open(path, "rb"))
	local s = f:read("a")
	f:close()
	return s
end

-- index.html with its CDN stylesheets replaced by the local ones
local function local_index(html)
	local roboto = {}
	for _, w in ipairs { "300", "400", "500", "700" } do
		roboto[#roboto + 1] = '<link rel="stylesheet" href="roboto/' .. w .. '.css">'
	end
	local n1, n2
	html, n1 = html:gsub('<link rel="stylesheet" href="https://fonts%.googleapis%.com/[^"]*">',
		function() return table.concat(roboto) end)
	html, n2 = html:gsub('<link rel="stylesheet" href="https://cdn%.jsdelivr%.net/npm/@mdi/font[^"]*">',
		'<link rel="stylesheet" href="mdi/css/materialdesignicons.min.css">')
	assert(n1 == 1 and n2 == 1, "admin_ui: ui/dist/index.html is not the 0.5 one this expects")
	assert(not html:find("https?://"), "admin_ui: index.html still names another site")
	return html
end
M.local_index = local_index

--- mount(srv, prefix, node_modules): the UI at prefix (ending in "/")
function M.mount(srv, prefix, node_modules)
	local dist = node_modules .. "/@socket.io/admin-ui/ui/dist"
	local index = local_index(read(dist .. "/index.html"))
	local function serve_index(_, res)
		res:header("Cache-Control", "no-cache")
		return res:send(index, "text/html; charset=utf-8")
	end
	srv:get(prefix, serve_index)
	srv:get(prefix .. "index.html", serve_index)
	srv:static(prefix .. "roboto/", node_modules .. "/@fontsource/roboto")
	srv:static(prefix .. "mdi/", node_modules .. "/@mdi/font")
	srv:static(prefix, dist)
	return srv
end

return M
