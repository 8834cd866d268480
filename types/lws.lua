---@meta lws
-- Type definitions for lua-language-server (LuaCATS annotations) of the
-- `lws` module: the loop and timers, the server and its connections, the
-- browser-shaped client, their option tables. The other modules have
-- their own files here: lws.socketio, lws.bus, lws.redis, lws.json, and
-- lws.http (HTTP requests and responses). Point your editor at this
-- directory (`workspace.library`); the rock installs it beside the
-- modules (lib/luarocks/rocks-5.4/lws/*/types). spec/types_spec.lua
-- checks that every function of these classes exists at run time, every
-- public one at run time is defined here, and every option class lists
-- exactly the options the code accepts. docs/reference/ is the prose.

---@class lws
---@field CONNECTING integer 0
---@field OPEN integer 1
---@field CLOSING integer 2
---@field CLOSED integer 3
---@field LOG_ERR integer libwebsockets log level bit (lws.set_log)
---@field LOG_WARN integer
---@field LOG_NOTICE integer
---@field LOG_INFO integer
---@field LOG_DEBUG integer
---@field version string this library's version
---@field lws_version string libwebsockets' version
---@field core table the C module (lws.core)
---@field emitter table on/once/off/emit/listener_count(obj, …), for objects of your own
---@field json lws.json the JSON module (require "lws.json")
---@field redis lws.redis the Redis module (require "lws.redis")
---@field socketio lws.socketio the Socket.IO module, callable: lws.socketio(server, opts); loaded on first use
local lws = {}

---@class lws.TlsOptions
---@field cert string PEM certificate file (required)
---@field key string PEM private key file (required)
---@field ca? string PEM CA file

---@class lws.CompressionOptions
---@field server_no_context_takeover? boolean reset our deflater after each message (default false)
---@field level? integer zlib level 1..9 (default 1)
---@field mem_level? integer zlib memLevel 1..9 (default 8)

---@class lws.HeartbeatOptions
---@field interval? number ms between protocol pings (default 30000)
---@field timeout? number ms after the oldest unanswered ping before the connection is dropped with 1006 "heartbeat timeout" (default 10000)

---@class lws.AppHeartbeatOptions
---@field ping string the text message a browser sends (required)
---@field pong string the text answered, before any "message" handler (required)

---@class lws.ServerOptions
---@field host? string address to listen on (default "127.0.0.1")
---@field port? integer 0..65535 (default 0: a free port, read it back with server:port())
---@field tls? lws.TlsOptions serve https:// and wss:// (default: plain text)
---@field http2? boolean with tls: offer h2,http/1.1 in ALPN, HTTP over HTTP/2; RFC 8441 WebSockets are closed with 1008 (default false)
---@field max_message_size? integer bytes, 0..2^40 (default 16 MiB); larger messages close with 1009
---@field max_queue_bytes? integer send queue cap per connection, bytes (default 16 MiB)
---@field close_timeout? integer 1..3600 s queued data may take before our Close (default 10)
---@field slow_consumer? "error"|"close" what a full queue does (default "error": send() returns nil, err, "full"; "close": fail with 1008)
---@field backlog? integer listen() backlog 1..65535 (default 511)
---@field reuseport? boolean SO_REUSEPORT (default false)
---@field workers? integer 0..256 worker processes accepting on the port (default none)
---@field sticky? boolean with workers: a client address always reaches the same worker (default false)
---@field max_body_size? integer HTTP request bodies, bytes (default 1 MiB); more gets 413
---@field request_timeout? integer 0..86400 s a deferred HTTP answer may take (default 60; 0: none)
---@field compression? boolean|lws.CompressionOptions permessage-deflate (default off)
---@field handshake_timeout? integer 1..3600 s from a request's first byte to its complete headers (default 10)
---@field keepalive_timeout? integer 1..3600 s an idle keep-alive HTTP connection stays (default 5)
---@field rx_buffer_size? integer 128..1 MiB, libwebsockets' receive buffer per connection (default 2048)
---@field verify? fun(req: lws.UpgradeRequest, ws: lws.Conn): (boolean|nil, integer?, string?, table<string, string>?) return false, status (401), message ("Unauthorized"), headers to refuse an upgrade (default: accept)
---@field handle_protocols? fun(protocols: string[], req: lws.UpgradeRequest): string|false|nil picks the subprotocol (default: the first offered)
---@field path? string the only path upgrades are accepted on (default: any; others get 400)
---@field heartbeat? lws.HeartbeatOptions protocol pings for every connection (default off)
---@field app_heartbeat? lws.AppHeartbeatOptions a text ping-pong for browsers (default off)
---@field max_connections? integer one more upgrade gets 503 with Retry-After: 5 (default none)
---@field origins? string[] allowed Origin values; a browser upgrade from another origin gets 403 (default any)
---@field handshake_rate? number new upgrades per second, token bucket; the excess gets 503 (default none)
---@field idle_timeout? number seconds without traffic from the peer before a close with 1001 (default none)

---@param opts lws.ServerOptions
---@return lws.Server|nil server
---@return string? err "cannot listen on 127.0.0.1:8080: Address already in use"
---@return string? code "listen", "tls"
function lws.server(opts) end

---@class lws.ReconnectOptions
---@field min? number ms before the first attempt (default 1000)
---@field max? number cap on the delay, ms (default 30000)
---@field factor? number growth per attempt (default 2)
---@field jitter? number 0..1, share of the delay taken off at random (default 0.5)
---@field attempts? number attempts before giving up (default math.huge)
---@field reset_after? number ms a connection must stay open to reset the count (default 5000)

---@class lws.WebSocketOptions
---@field headers? table<string, string> request headers (default none); the handshake's own raise
---@field origin? string the Origin header (default none)
---@field ca? string PEM file of the CAs to trust for wss:// (default: the system's)
---@field insecure? boolean accept any certificate and name (default false; tests only)
---@field connect_timeout? number ms until a connection not open fails with "timeout" (default 10000)
---@field max_message_size? integer bytes (default 16 MiB)
---@field max_queue_bytes? integer bytes (default 16 MiB)
---@field close_timeout? integer seconds (default 10)
---@field heartbeat? lws.HeartbeatOptions protocol pings (default off)
---@field reconnect? boolean|lws.ReconnectOptions reconnect with backoff (default off; true: the defaults)
---@field final_codes? integer[] close codes and HTTP statuses never retried (default none)
---@field queue_while_reconnecting? integer messages send() queues while not open (default 0)

---@param url string ws:// or wss://
---@param protocols? string|string[]
---@param opts? lws.WebSocketOptions
---@return lws.WebSocket
function lws.WebSocket(url, protocols, opts) end

---@param opts lws.BusOptions
---@return lws.Bus
function lws.bus(opts) end

---@param mode? "default"|"once"|"nowait"
---@return boolean|nil more true while something is left to run
---@return string? err "loop already running"
---@return string? code "busy"
function lws.run(mode) end
--- Return from run() promptly, also from inside a callback.
function lws.stop() end
--- Destroy every server, connection, timer and watch now.
function lws.shutdown() end

---@class lws.Stats
---@field connections integer
---@field servers integer
---@field timers integer
---@field watches integer
---@field requests integer pending HTTP requests
---@field callback_errors integer
---@field pending integer deferred calls not yet run
---@field running boolean inside lws.run()
---@field context boolean the libwebsockets context exists
---@field loop "libev"|"poll" the loop that runs
---@field heap_in_use integer bytes allocated (glibc)
---@field heap_held integer bytes malloc holds from the kernel
---@field max_fds integer? the descriptor limit the context was created with (once it exists)

---@return lws.Stats
function lws.stats() end
---@param opts { loop?: "libev"|"poll", max_fds?: integer } before the first server, client or timer (raises once the context exists and differs)
function lws.configure(opts) end
---@return number ms monotonic milliseconds
function lws.now() end

---@class lws.Timer
local Timer = {}
function Timer:stop() end
---@param ms? number delay (default: the interval, or 0)
function Timer:again(ms) end
---@return boolean scheduled
function Timer:active() end
--- This timer no longer keeps run() alive.
function Timer:unref() end

---@param fn fun()
---@param ms? number delay (default 0)
---@return lws.Timer
function lws.set_timeout(fn, ms) end
---@param fn fun()
---@param ms number interval > 0
---@return lws.Timer
function lws.set_interval(fn, ms) end
---@param timer? lws.Timer
function lws.clear(timer) end
---@param timer? lws.Timer
function lws.clear_timeout(timer) end
---@param timer? lws.Timer
function lws.clear_interval(timer) end

---@class lws.Watch
local Watch = {}
function Watch:close() end
--- This watch no longer keeps run() alive.
function Watch:unref() end

---@param fd integer
---@param fn fun(watch: lws.Watch) whenever fd is readable
---@return lws.Watch
function lws.watch(fd, fn) end
---@param name string|integer "SIGTERM", "SIGINT", "SIGHUP", "SIGQUIT", "SIGUSR1", "SIGUSR2", "SIGCHLD", "SIGPIPE" or a number
---@param fn? fun(name: string|integer) nil restores the default
---@return true|nil ok
---@return string? err
function lws.on_signal(name, fn) end
---@param fn? fun(message: string) where callback errors go (default: stderr)
function lws.on_error(fn) end
---@param levels? integer lws.LOG_* bits (default 0: quiet)
---@param fn? fun(level: integer, line: string)
function lws.set_log(levels, fn) end
---@param url string
---@return { tls: boolean, host: string, port: integer, path: string, scheme: string }|nil parts
---@return string? err
function lws.parse_url(url) end
---@param headers table<string, string>
---@return string lines "Name: value\r\n" lines, sorted; raises on CR/LF
function lws.header_lines(headers) end
---@return integer index 1..N in a worker (workers = N), 0 in the parent or without workers
function lws.worker_index() end

---@class lws.Emitter
local Emitter = {}
---@param event string
---@param fn function
---@return self
function Emitter:on(event, fn) end
---@param event string
---@param fn function
---@return self
function Emitter:once(event, fn) end
---@param event? string nil: every event
---@param fn? function nil: every handler of event
---@return self
function Emitter:off(event, fn) end
---@param event string
---@return boolean handled
function Emitter:emit(event, ...) end
---@param event string
---@return integer
function Emitter:listener_count(event) end

---@class lws.UpgradeRequest
---@field method string
---@field path string
---@field url string path and query
---@field query table<string, string>
---@field headers table<string, string> lower-case names
---@field http_version string
---@field remote_address? string
---@field protocols string[] offered subprotocols

---@class lws.ServerStats
---@field connections integer
---@field handshakes integer
---@field handshakes_refused integer
---@field http_requests integer
---@field messages_in integer
---@field messages_out integer
---@field bytes_in integer
---@field bytes_out integer
---@field queued_bytes integer
---@field dropped integer
---@field closes table<integer, integer> by close code
---@field callback_errors integer

---@class lws.TopicOptions
---@field conflate? boolean a slow reader's queue holds only the newest message (default false)
---@field drop_oldest? boolean evict the oldest queued messages of such topics for new ones (default false)

---@class lws.Server: lws.Emitter
---@field clients table<lws.Conn, true> the open connections
local Server = {}
---@return integer|nil port
---@return string? err "server is closed"
---@return string? code "closed"
function Server:port() end
---@return string host
---@return integer port
function Server:address() end
---@param grace? number seconds before what is left is dropped (default close_timeout)
function Server:close(grace) end
---@param grace? number seconds
---@param on_done? fun() when everything is closed
---@return true
function Server:shutdown(grace, on_done) end
---@return integer
function Server:client_count() end
---@return integer
function Server:connection_count() end
---@param ws lws.Conn
---@return boolean
function Server:has_client(ws) end
---@return lws.Conn[] snapshot of the open connections
function Server:client_list() end
---@param data string
---@param binary? boolean
---@param except? lws.Conn
---@param opts? { key?: string, droppable?: boolean }
---@return integer queued
---@return integer refused
function Server:send_all(data, binary, except, opts) end
---@return table fields the server's Lua field table
function Server:fields() end
---@return lws.ServerStats
function Server:stats() end
---@return table counters from C (the same without closes and callback_errors)
function Server:c_stats() end
---@param path? string (default "/metrics")
---@return lws.Server
function Server:metrics(path) end
---@param data string
---@param binary? boolean
---@param opts? { except?: lws.Conn }
---@return integer queued
---@return integer refused
function Server:broadcast(data, binary, opts) end
---@param topic string
---@param data string
---@param binary? boolean
---@return integer queued
---@return integer refused
function Server:publish(topic, data, binary) end
---@param name string
---@param opts? lws.TopicOptions
---@return self
function Server:topic(name, opts) end
---@param topic string
---@return integer
function Server:subscribers(topic) end
---@param method string "GET", …, or "*"
---@param path string "/api/items/:id", "/files/*"
---@param fn fun(req: lws.Request, res: lws.Response)
---@return self
function Server:route(method, path, fn) end
---@param path string
---@param fn fun(req: lws.Request, res: lws.Response)
---@return self
function Server:get(path, fn) end
---@param path string
---@param fn fun(req: lws.Request, res: lws.Response)
---@return self
function Server:post(path, fn) end
---@param path string
---@param fn fun(req: lws.Request, res: lws.Response)
---@return self
function Server:put(path, fn) end
---@param path string
---@param fn fun(req: lws.Request, res: lws.Response)
---@return self
function Server:patch(path, fn) end
---@param path string
---@param fn fun(req: lws.Request, res: lws.Response)
---@return self
function Server:delete(path, fn) end
---@param path string
---@param fn fun(req: lws.Request, res: lws.Response)
---@return self
function Server:options(path, fn) end
---@param prefix string URL prefix starting with /
---@param dir string
---@param opts? lws.StaticOptions
---@return self
function Server:static(prefix, dir, opts) end
---@param path string
---@param fn fun(ws: lws.Conn, req: lws.UpgradeRequest)
---@param opts? { verify?: fun(req: lws.UpgradeRequest, ws: lws.Conn): (boolean|nil, integer?, string?, table<string, string>?), handle_protocols?: fun(protocols: string[], req: lws.UpgradeRequest): string|false|nil }
---@return self
function Server:websocket(path, fn, opts) end

---@class lws.ConnStats
---@field messages_in integer
---@field messages_out integer
---@field bytes_in integer
---@field bytes_out integer
---@field dropped integer

---@class lws.Conn: lws.Emitter
---@field readyState integer 0 CONNECTING, 1 OPEN, 2 CLOSING, 3 CLOSED
---@field bufferedAmount integer bytes queued and not yet handed to the kernel
---@field protocol string "" when none
---@field extensions string "permessage-deflate" or ""
---@field remote_address? string
---@field request lws.UpgradeRequest the upgrade request
---@field state string "CONNECTING", "OPEN", "CLOSING", "CLOSED"
---@field last_activity number lws.now() ms of the last bytes from the peer
---@field is_client boolean
---@field rtt? number ms, with heartbeat
---@field [string] any any other field is yours (ws.name = "bob")
local Conn = {}
---@param data string
---@param binary? boolean
---@param key? string conflation key: replaces a queued message with the same key
---@return true|nil ok
---@return string? err
---@return string? code "closed", "full"
function Conn:send(data, binary, key) end
---@param payload? string at most 125 bytes (more raises)
---@return true|nil ok
---@return string? err
---@return string? code "closed", "busy"
function Conn:ping(payload) end
---@param code? integer 1000-1003, 1007-1014, 3000-4999 (default 1000)
---@param reason? string at most 123 bytes of UTF-8
---@return true|nil ok
---@return string? err
---@return string? code "closed"
function Conn:close(code, reason) end
---@param reason? string
function Conn:terminate(reason) end
function Conn:pause() end
function Conn:resume() end
---@param limits { max_message_size?: integer, max_queue_bytes?: integer, close_timeout?: integer }
function Conn:set_limits(limits) end
---@return lws.ConnStats
function Conn:stats() end
---@return table fields the connection's Lua field table
function Conn:fields() end
---@param topic string
---@return true|nil ok
---@return string? err
---@return string? code "closed"
function Conn:subscribe(topic) end
---@param topic string
---@return boolean was_subscribed
function Conn:unsubscribe(topic) end
---@param topic string
---@return boolean
function Conn:is_subscribed(topic) end

---@class lws.WebSocket: lws.Emitter
---@field url string
---@field readyState integer
---@field bufferedAmount integer
---@field protocol string
---@field extensions string
---@field rtt? number ms, with heartbeat
---@field onopen? fun(ev: { type: "open", attempt: integer, target: lws.WebSocket })
---@field onmessage? fun(ev: { type: "message", data: string, binary: boolean, target: lws.WebSocket })
---@field onerror? fun(ev: { type: "error", message: string, code: string, status?: integer, close_code?: integer, target: lws.WebSocket })
---@field onclose? fun(ev: { type: "close", code: integer, reason: string, wasClean: boolean, reconnecting: boolean, target: lws.WebSocket })
---@field onreconnect? fun(ev: { type: "reconnect", attempt: integer, delay: number, target: lws.WebSocket })
local WebSocket = {}
---@param data string
---@param binary? boolean
---@return true|nil ok
---@return string? err
---@return string? code "closed", "connecting", "reconnecting", "full"
function WebSocket:send(data, binary) end
---@param payload? string
---@return true|nil ok
---@return string? err
---@return string? code "closed", "busy"
function WebSocket:ping(payload) end
---@param code? integer 1000 or 3000-4999 (default 1000)
---@param reason? string at most 123 bytes of UTF-8
function WebSocket:close(code, reason) end
function WebSocket:terminate() end

return lws
