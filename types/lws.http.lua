---@meta _
-- lua-language-server definitions of what an HTTP route handler gets:
-- the request table and the response object (csrc/request.c methods plus
-- lua/lws/http.lua's), and the options of server:static(). Nothing here
-- is required by name (lws.http itself is internal: routes and static
-- files are server methods, see types/lws.lua). docs/reference/http.md
-- is the prose.

---@class lws.Request: lws.UpgradeRequest
---@field body? string the request body (Content-Length or decoded chunked), under max_body_size
---@field params? table<string, string> captures of a pattern route (":id" -> params.id, "*" -> params["*"])

---@class lws.StaticOptions
---@field index? string the file a directory serves (default "index.html")
---@field cache_control? string Cache-Control of every answer (default "no-cache": revalidate with the ETag)
---@field headers? table<string, string> added to every answer of the mount (default none)
---@field gzip? boolean gzip text-like files of 1 KiB or more for clients that accept it (default true)

--- The response: one pending HTTP transaction (an lws.request userdata).
--- Events: "abort"() the client left before the answer; "timeout"() at
--- the deadline (answer from it, or the client gets 503).
---@class lws.Response: lws.Emitter
---@field sent boolean an answer is being or has been written
---@field closed boolean the client's connection is gone
---@field request lws.Request
local Response = {}
---@param code integer 100..999
---@return self
function Response:status(code) end
---@param name string
---@param value any written with tostring; CR/LF raise
---@return self
function Response:header(name, value) end
---@param body? string (default "")
---@param content_type? string (default "text/plain; charset=utf-8" unless a Content-Type header was set, or the status is 204/304)
---@return true|nil ok
---@return string? err "response already sent", "request is closed"
---@return string? code "sent", "closed", "nomem"
function Response:send(body, content_type) end
---@param value any encoded with lua-cjson
---@param status? integer
---@return true|nil ok
---@return string? err
---@return string? code "sent", "closed", "nomem"
function Response:json(value, status) end
---@param location string
---@param status? integer (default 302)
---@return true|nil ok
---@return string? err
---@return string? code
function Response:redirect(location, status) end
---@param status integer
---@param message? string (default the status number)
---@return true|nil ok
---@return string? err
---@return string? code
function Response:error(status, message) end
---@param seconds integer 0..86400 deadline of a deferred answer (0: none)
function Response:set_timeout(seconds) end
--- The raw answer (send() builds it): status, "Name: value\r\n" lines, body.
---@param status integer
---@param headers? string
---@param body? string
---@return true|nil ok
---@return string? err
---@return string? code "sent", "closed", "nomem"
function Response:respond(status, headers, body) end
---@return table fields status and headers of the answer being built
function Response:fields() end
