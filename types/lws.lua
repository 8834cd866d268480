---@meta lws
-- Type definitions for lua-language-server (LuaCATS annotations) of the
-- `lws` module, the server and its connections, and the browser-shaped
-- client. Point your editor at this directory (`workspace.library`); the
-- rock installs it beside the modules (lib/luarocks/rocks-5.4/lws/*/types).
-- spec/types_spec.lua checks that every function of these classes exists
-- at run time and every public one at run time is defined here.
-- Not covered yet: lws.socketio, lws.bus, lws.redis, lws.json, requests.

---@class lws
---@field CONNECTING integer 0
---@field OPEN integer 1
---@field CLOSING integer 2
---@field CLOSED integer 3
---@field LOG_ERR integer
---@field LOG_WARN integer
---@field LOG_NOTICE integer
---@field LOG_INFO integer
---@field LOG_DEBUG integer
---@field version string this library's version
---@field lws_version string libwebsockets' version
---@field core table the C module (lws.core)
---@field emitter table on/once/off/emit, for objects of your own
---@field json table lws.json
---@field redis table lws.redis
---@field socketio table lws.socketio (callable: lws.socketio(server, opts))
local lws = {}

---@class lws.ServerOptions
---@field host? string address to listen on (default "127.0.0.1")
---@field port? integer 0..65535 (default 0: a free port, read it back with server:port())
---@field tls? { cert: string, key: string, ca?: string } serve https:// and wss://
---@field max_message_size? integer bytes (default 16 MiB); larger messages close with 1009
---@field max_queue_bytes? integer send queue cap per connection (default 16 MiB)
---@field close_timeout? integer seconds queued data may take before our Close (default 10)
---@field slow_consumer? "error"|"close" what a full queue does (default "error": send() refuses)
---@field backlog? integer listen() backlog (default 511)
---@field reuseport? boolean SO_REUSEPORT
---@field workers? integer worker processes sharing the port
---@field sticky? boolean with workers: a client address always reaches the same worker
---@field max_body_size? integer HTTP request bodies (default 1 MiB)
---@field request_timeout? integer seconds a deferred HTTP answer may take (default 60)
---@field compression? boolean|{ server_no_context_takeover?: boolean, level?: integer, mem_level?: integer } permessage-deflate
---@field handshake_timeout? integer seconds (default 10)
---@field keepalive_timeout? integer seconds (default 5)
---@field rx_buffer_size? integer 128..1 MiB (default 2048)
---@field verify? fun(req: table): (boolean|nil, integer?, string?) accept or refuse an upgrade
---@field handle_protocols? fun(protocols: string[], req: table): string|false
---@field path? string the only path upgrades are accepted on
---@field heartbeat? { interval?: number, timeout?: number } protocol pings (ms)
---@field app_heartbeat? { ping: string, pong: string } a text ping-pong for browsers
---@field max_connections? integer
---@field origins? string[] accepted Origin headers
---@field handshake_rate? number upgrades per second per address
---@field idle_timeout? number seconds without traffic before a close

---@param opts lws.ServerOptions
---@return lws.Server|nil server
---@return string? err
---@return string? code "listen", "tls", …
function lws.server(opts) end

---@class lws.WebSocketOptions
---@field headers? table<string, string> request headers
---@field origin? string
---@field ca? string PEM file of the CAs to trust
---@field insecure? boolean accept any certificate (tests only)
---@field connect_timeout? number ms (default 10000)
---@field max_message_size? integer
---@field max_queue_bytes? integer
---@field close_timeout? integer seconds
---@field heartbeat? { interval?: number, timeout?: number }
---@field reconnect? boolean|{ min?: number, max?: number, factor?: number, jitter?: number, attempts?: integer, reset_after?: number }
---@field final_codes? integer[] close codes after which no reconnect is tried
---@field queue_while_reconnecting? integer messages send() may queue while not connected

---@param url string ws:// or wss://
---@param protocols? string|string[]
---@param opts? lws.WebSocketOptions
---@return lws.WebSocket
function lws.WebSocket(url, protocols, opts) end

---@param opts table { redis = {...} | client, channel?, node_id?, presence_ttl? }
---@return table bus
function lws.bus(opts) end

---@param mode? "default"|"once"|"nowait"
---@return boolean more
function lws.run(mode) end
function lws.stop() end
function lws.shutdown() end
---@return table stats
function lws.stats() end
---@param opts { loop?: "libev"|"poll" }
function lws.configure(opts) end
---@return number ms monotonic milliseconds
function lws.now() end
---@param fn fun()
---@param ms number
---@return table timer
function lws.set_timeout(fn, ms) end
---@param fn fun()
---@param ms number
---@return table timer
function lws.set_interval(fn, ms) end
---@param timer table
function lws.clear(timer) end
---@param timer table
function lws.clear_timeout(timer) end
---@param timer table
function lws.clear_interval(timer) end
---@param fd integer
---@param fn fun(watch: table)
---@return table watch
function lws.watch(fd, fn) end
---@param name string "SIGTERM", "SIGINT", "SIGHUP", …
---@param fn fun(name: string)
function lws.on_signal(name, fn) end
---@param fn? fun(message: string) where callback errors go (default: stderr)
function lws.on_error(fn) end
---@param levels integer lws.LOG_* bits
---@param fn? fun(level: integer, line: string)
function lws.set_log(levels, fn) end
---@param url string
---@return table|nil parts { tls, host, port, path }
---@return string? err
function lws.parse_url(url) end
---@param headers table<string, string>
---@return string lines "Name: value\r\n" lines, sorted
function lws.header_lines(headers) end
---@return integer|nil index this worker's index (workers = N), or nil
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
---@param event? string
---@param fn? function
---@return self
function Emitter:off(event, fn) end
---@param event string
---@return boolean handled
function Emitter:emit(event, ...) end
---@param event string
---@return integer
function Emitter:listener_count(event) end

---@class lws.Server: lws.Emitter
---@field clients table<lws.Conn, true> the open connections
local Server = {}
---@return integer
function Server:port() end
---@return string host
---@return integer port
function Server:address() end
---@param timeout? number seconds to wait for clean closes
function Server:close(timeout) end
---@param seconds? number
function Server:shutdown(seconds) end
---@return integer
function Server:client_count() end
---@return integer
function Server:connection_count() end
---@return table
function Server:fields() end
---@return table counters
function Server:stats() end
---@return table counters from C
function Server:c_stats() end
---@return string text Prometheus exposition format
function Server:metrics() end
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
---@param opts? { conflate?: boolean, drop_oldest?: boolean }
---@return self
function Server:topic(name, opts) end
---@param topic string
---@return integer
function Server:subscribers(topic) end
---@param method string
---@param path string "/api/items/:id", "/files/*"
---@param fn fun(req: table, res: table)
function Server:route(method, path, fn) end
---@param path string
---@param fn fun(req: table, res: table)
function Server:get(path, fn) end
---@param path string
---@param fn fun(req: table, res: table)
function Server:post(path, fn) end
---@param path string
---@param fn fun(req: table, res: table)
function Server:put(path, fn) end
---@param path string
---@param fn fun(req: table, res: table)
function Server:patch(path, fn) end
---@param path string
---@param fn fun(req: table, res: table)
function Server:delete(path, fn) end
---@param path string
---@param fn fun(req: table, res: table)
function Server:options(path, fn) end
---@param prefix string URL prefix starting with /
---@param dir string
---@param opts? { index?: string, cache_control?: string, headers?: table<string, string>, gzip?: boolean }
function Server:static(prefix, dir, opts) end
---@param path string
---@param fn fun(ws: lws.Conn, req: table)
---@param opts? table
function Server:websocket(path, fn, opts) end

---@class lws.Conn: lws.Emitter
---@field readyState integer 0 CONNECTING, 1 OPEN, 2 CLOSING, 3 CLOSED
---@field bufferedAmount integer bytes queued and not yet handed to the kernel
---@field protocol string
---@field extensions string
---@field remote_address string
---@field request table the upgrade request
local Conn = {}
---@param data string
---@param binary? boolean
---@param key? string conflation key: replaces a queued message with the same key
---@return boolean|nil ok
---@return string? err
---@return string? code "closed", "full"
function Conn:send(data, binary, key) end
---@param payload? string at most 125 bytes
---@return boolean|nil ok
---@return string? err
---@return string? code "closed", "busy"
function Conn:ping(payload) end
---@param code? integer
---@param reason? string
---@return boolean|nil ok
---@return string? err
---@return string? code "closed"
function Conn:close(code, reason) end
---@param reason? string
function Conn:terminate(reason) end
function Conn:pause() end
function Conn:resume() end
---@param limits { max_message_size?: integer, max_queue_bytes?: integer, close_timeout?: integer }
function Conn:set_limits(limits) end
---@return table counters
function Conn:stats() end
---@return table
function Conn:fields() end
---@param topic string
function Conn:subscribe(topic) end
---@param topic string
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
---@field onopen? fun(ev: table)
---@field onmessage? fun(ev: { data: string, binary: boolean })
---@field onerror? fun(ev: { message: string, code: string, status?: integer })
---@field onclose? fun(ev: { code: integer, reason: string, wasClean: boolean, reconnecting: boolean })
local WebSocket = {}
---@param data string
---@param binary? boolean
---@return boolean|nil ok
---@return string? err
---@return string? code
function WebSocket:send(data, binary) end
---@param payload? string
---@return boolean|nil ok
---@return string? err
---@return string? code
function WebSocket:ping(payload) end
---@param code? integer 1000 or 3000-4999
---@param reason? string
function WebSocket:close(code, reason) end
function WebSocket:terminate() end

return lws
