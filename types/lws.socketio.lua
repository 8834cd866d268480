---@meta lws.socketio
-- lua-language-server definitions of lws.socketio: the Socket.IO server
-- (protocol 4/5 over Engine.IO 3 and 4), its namespaces, sockets and
-- broadcast operators, and the Redis adapter of @socket.io/redis-adapter
-- (docs/reference/socketio.md).
-- `require("lws.socketio")(server, opts)` is `lws.socketio.new(server, opts)`.
-- Lua has no `in` method name: `sio:in_(room)` (also `sio["in"](sio, room)`);
-- `local` is `sio.local_` (also `sio["local"]`).

---@class lws.socketio.CorsOptions
---@field origin? string|boolean|string[]|fun(origin: string, req: lws.Request): boolean "*", true (echo the Origin), one origin, a list, or a function (default "*")
---@field credentials? boolean Access-Control-Allow-Credentials: true (default false)
---@field methods? string preflight Access-Control-Allow-Methods (default "GET,HEAD,PUT,PATCH,POST,DELETE")
---@field allowed_headers? string preflight Access-Control-Allow-Headers (default: what the preflight asked for)
---@field exposed_headers? string Access-Control-Expose-Headers (default none)
---@field max_age? number preflight Access-Control-Max-Age, seconds (default none)

---@class lws.socketio.RecoveryOptions
---@field max_disconnection_duration? number ms a 4.x client may be away and still recover (default 120000)
---@field skip_middlewares? boolean a recovered socket skips the connection middlewares (default true)

---@class lws.socketio.HttpCompressionOptions
---@field threshold? number bytes from which polling answers are gzipped (default 1024)
---@field level? integer zlib level 1..9 (default 6)

---@class lws.socketio.Options
---@field path? string (default "/socket.io")
---@field ping_interval? number ms (default 25000)
---@field ping_timeout? number ms (default 20000)
---@field upgrade_timeout? number ms a polling → websocket upgrade may take (default 10000)
---@field connect_timeout? number ms an EIO 4 session may take to join a namespace (default 45000)
---@field max_http_buffer_size? number bytes (default 1000000): a bigger POST gets 413, a bigger websocket message closes with 1009
---@field transports? ("polling"|"websocket")[] (default { "polling", "websocket" })
---@field allow_upgrades? boolean (default true)
---@field allow_eio3? boolean accept socket.io-client 1.x/2.x (default true)
---@field cors? lws.socketio.CorsOptions (default none)
---@field allow_request? fun(req: lws.Request): (boolean, string?) refuse a handshake with false[, err] (default: accept)
---@field serve_client? boolean serve the client bundle at <path>/socket.io.js (default true)
---@field client_version? "2"|"4" which bundle: socket.io-client 2.3.0 or 4.8.4 (default "2")
---@field client_dir? string serve the bundle from this directory instead (default: the shipped one)
---@field connection_state_recovery? lws.socketio.RecoveryOptions (default off)
---@field max_attachments? number binary attachments per packet (default 10)
---@field close_timeout? number ms a closing polling session waits for the GET that takes its last packets (default 30000)
---@field bus? lws.Bus broadcasts and room operations reach every node (default none)
---@field http_compression? boolean|lws.socketio.HttpCompressionOptions gzip polling answers (default true)
---@field parser? "json"|"msgpack" "msgpack": socket.io-msgpack-parser 3's packets, 4.x clients only; socket.io.js is then the msgpack bundle (default "json")
---@field adapter? lws.socketio.RedisAdapter|fun(nsp: lws.socketio.Namespace): table the rooms and how a broadcast reaches sockets: lws.socketio.redis_adapter{…}, or a factory function(nsp) -> adapter (the interface: lua/lws/socketio/adapter.lua); not with bus (default: in memory)

---@class lws.socketio.InstrumentAuth
---@field type "basic"
---@field username string
---@field password string a bcrypt hash ("$2b$10$…", also $2a$ and $2y$), checked with crypt(3)

--- sio:instrument(opts): @socket.io/admin-ui 0.5's instrument() options, same names
---@class lws.socketio.InstrumentOptions
---@field auth false|lws.socketio.InstrumentAuth required: false (no login), or basic with a bcrypt hash (default none: raises)
---@field mode? "development"|"production" development adds all_sockets and the socket/room/event stream (default "development")
---@field namespace_name? string the admin namespace (default "/admin")
---@field server_id? string server_stats' serverId (default: the host name)
---@field readonly? boolean refuse the UI's commands (emit, join, leave, _disconnect) (default false)

---@class lws.socketio.RedisAdapterOptions
---@field host? string the Redis server (default "127.0.0.1")
---@field port? integer 1..65535 (default 6379)
---@field key? string the channel prefix, as the Node adapter's key (default "socket.io")
---@field request_timeout? number ms a request (fetch_sockets(fn), server_side_emit(..., fn)) waits for every node (default 5000)
---@field redis? lws.RedisOptions more lws.redis options (password, db, reconnect, ...) (default none)
---@field sharded? boolean createShardedAdapter's protocol (Redis 7 SPUBLISH/SSUBSCRIBE) (default false)
---@field subscription_mode? "dynamic"|"dynamic-private"|"static" with sharded, as Node's subscriptionMode (default "dynamic")

---@class lws.socketio.RedisStreamsAdapterOptions
---@field host? string the Redis server (default "127.0.0.1")
---@field port? integer 1..65535 (default 6379)
---@field redis? lws.RedisOptions more lws.redis options (default none)
---@field request_timeout? number ms a request waits for every node (default 5000)
---@field stream_name? string the stream (default "socket.io")
---@field stream_count? integer streams, <stream_name>-<i> per namespace when > 1 (default 1)
---@field channel_prefix? string pub/sub channel prefix (default "socket.io")
---@field use_sharded_pubsub? boolean SPUBLISH/SSUBSCRIBE (default false)
---@field max_len? integer XADD MAXLEN ~ (default 10000)
---@field read_count? integer XREAD COUNT (default 100)
---@field block_time? integer XREAD BLOCK ms (default 5000)
---@field session_key_prefix? string where sessions wait (default "sio:session:")
---@field only_plaintext? boolean binary data as JSON in entries (default false)

--- What lws.socketio.redis_adapter{…} returns: the value of the adapter
--- option. One lws.redis client, opened by the first namespace and closed
--- with the last (io:close() closes it).
---@class lws.socketio.RedisAdapter
local RedisAdapter = {}
--- (the Socket.IO server calls it) the adapter of one namespace
---@param nsp lws.socketio.Namespace
---@return table adapter
function RedisAdapter:new(nsp) end
--- The Redis client goes now (io:close() does it too).
function RedisAdapter:close() end

--- A socket as fetch_sockets(fn) gives it, on this node or another one
--- (Socket.IO's RemoteSocket); its methods reach it wherever it is.
---@class lws.socketio.RemoteSocket
---@field id string
---@field handshake lws.socketio.Handshake|table
---@field rooms string[] the rooms it is in (its id included)
---@field data any its socket.data
---@field socket? lws.socketio.Socket the socket itself, when it is on this node
local RemoteSocket = {}
---@param event string
---@return true
function RemoteSocket:emit(event, ...) end
---@param ms number
---@return lws.socketio.BroadcastOperator
function RemoteSocket:timeout(ms) end
---@param room string|string[]
function RemoteSocket:join(room) end
---@param room string
function RemoteSocket:leave(room) end
---@param close? boolean end the whole session, not only the namespace
function RemoteSocket:disconnect(close) end

---@class lws.socketio.Handshake
---@field headers table<string, string>
---@field query table<string, string>
---@field auth table the client's auth payload
---@field address? string
---@field url string
---@field time string
---@field issued integer ms since the epoch
---@field xdomain boolean
---@field secure boolean

--- What :to(room), :except(room), .volatile, .local_ and :timeout(ms)
--- return: a broadcast to the matching sockets.
---@class lws.socketio.BroadcastOperator
---@field volatile lws.socketio.BroadcastOperator skip sessions that are not writable
---@field local_ lws.socketio.BroadcastOperator this node only (also ["local"])
local Operator = {}
---@param room string|string[]
---@return lws.socketio.BroadcastOperator
function Operator:to(room) end
---@param room string|string[]
---@return lws.socketio.BroadcastOperator
function Operator:in_(room) end
Operator["in"] = Operator.in_
---@param room string|string[]
---@return lws.socketio.BroadcastOperator
function Operator:except(room) end
---@param ms number how long a broadcast ack waits
---@return lws.socketio.BroadcastOperator
function Operator:timeout(ms) end
--- Accepted for Socket.IO compatibility; does nothing.
---@return self
function Operator:compress() end
--- The last argument may be fun(err: string|nil, responses: table) (needs :timeout(ms) first).
---@param event string not a reserved name (connect, connect_error, disconnect, disconnecting, newListener, removeListener)
---@return true
function Operator:emit(event, ...) end
--- emit("message", ...)
---@return true
function Operator:send(...) end
---@return lws.socketio.Socket[] this node's matching sockets
function Operator:sockets() end
--- Without fn: this node's matching sockets, at once. With fn: every
--- node's, as remote sockets; err after the adapter's request timeout,
--- with the sockets that came.
---@param fn? fun(err: string|nil, sockets: lws.socketio.RemoteSocket[])
---@return lws.socketio.Socket[]|nil
function Operator:fetch_sockets(fn) end
---@param room string|string[]
function Operator:sockets_join(room) end
---@param room string
function Operator:sockets_leave(room) end
---@param close? boolean end the whole session, not only the namespace
function Operator:disconnect_sockets(close) end

--- One client in one namespace. Events: any event name the client emits
--- (handlers get its arguments, then an ack function when it asked for
--- one), "disconnecting"(reason, description), "disconnect"(reason,
--- description), "error"(err) from a per-packet middleware or a malformed packet.
---@class lws.socketio.Socket
---@field id string
---@field pid? string with connection_state_recovery
---@field handshake lws.socketio.Handshake
---@field data table your per-socket data (kept across a recovery)
---@field rooms table<string, true> a copy of the rooms it is in (its id included)
---@field broadcast lws.socketio.BroadcastOperator every socket of the namespace but this one
---@field volatile lws.socketio.Socket the next emit skips a session that is not writable
---@field connected boolean
---@field disconnected boolean
---@field recovered boolean restored by connection state recovery
---@field nsp lws.socketio.Namespace
---@field server lws.socketio.Server
---@field request lws.Request the Engine.IO handshake request
local Socket = {}
---@param event string
---@param fn function
---@return self
function Socket:on(event, fn) end
---@param event string
---@param fn function
---@return self
function Socket:once(event, fn) end
---@param event? string
---@param fn? function
---@return self
function Socket:off(event, fn) end
---@param event string
---@return integer
function Socket:listener_count(event) end
--- The last argument may be an ack fun(...) (with :timeout(ms): fun(err, ...)); raises on reserved names.
---@param event string
---@return true
function Socket:emit(event, ...) end
---@return true
function Socket:send(...) end
--- The next emit's ack gets (err, ...), err = "operation has timed out" when no answer came in time.
---@param ms number
---@return self
function Socket:timeout(ms) end
---@param rooms string|string[]
---@return self
function Socket:join(rooms) end
---@param room string
---@return self
function Socket:leave(room) end
---@param room string|string[]
---@return lws.socketio.BroadcastOperator
function Socket:to(room) end
---@param room string|string[]
---@return lws.socketio.BroadcastOperator
function Socket:in_(room) end
Socket["in"] = Socket.in_
---@param room string|string[]
---@return lws.socketio.BroadcastOperator
function Socket:except(room) end
---@return self
function Socket:compress() end
--- Per-packet middleware: packet = { n =, event, ... }; next(err) stops it with an "error" event.
---@param fn fun(packet: table, next: fun(err?: any))
---@return self
function Socket:use(fn) end
---@param fn fun(event: string, ...)
---@return self
function Socket:on_any(fn) end
---@param fn? function (default: every catch-all handler)
---@return self
function Socket:off_any(fn) end
---@param fn fun(event: string, ...)
---@return self
function Socket:on_any_outgoing(fn) end
--- Leave this namespace ("server namespace disconnect"); close = true ends the whole session.
---@param close? boolean
---@return self
function Socket:disconnect(close) end

--- Events: "connection"(socket) and "connect"(socket); with a cluster
--- adapter, what other nodes send with server_side_emit (its arguments,
--- then an ack function when the sender wants a reply).
---@class lws.socketio.Namespace
---@field name string "/", "/admin"
---@field sockets table<string, lws.socketio.Socket> connected sockets by id
---@field server lws.socketio.Server
---@field volatile lws.socketio.BroadcastOperator
---@field local_ lws.socketio.BroadcastOperator
local Namespace = {}
---@param event string
---@param fn function
---@return self
function Namespace:on(event, fn) end
---@param event string
---@param fn function
---@return self
function Namespace:once(event, fn) end
---@param event? string
---@param fn? function
---@return self
function Namespace:off(event, fn) end
---@param event string
---@return integer
function Namespace:listener_count(event) end
--- Connection middleware: next(err) refuses with CONNECT_ERROR (err: a message or { message =, data = }).
---@param fn fun(socket: lws.socketio.Socket, next: fun(err?: string|{ message: string, data?: any }))
---@return self
function Namespace:use(fn) end
---@param room string|string[]
---@return lws.socketio.BroadcastOperator
function Namespace:to(room) end
---@param room string|string[]
---@return lws.socketio.BroadcastOperator
function Namespace:in_(room) end
Namespace["in"] = Namespace.in_
---@param room string|string[]
---@return lws.socketio.BroadcastOperator
function Namespace:except(room) end
---@param ms number
---@return lws.socketio.BroadcastOperator
function Namespace:timeout(ms) end
---@param event string
---@return true
function Namespace:emit(event, ...) end
---@return true
function Namespace:send(...) end
--- Without fn: this node's sockets, at once; with fn: every node's (see BroadcastOperator:fetch_sockets).
---@param fn? fun(err: string|nil, sockets: lws.socketio.RemoteSocket[])
---@return lws.socketio.Socket[]|nil
function Namespace:fetch_sockets(fn) end
--- The event reaches this namespace on every other node (nsp:on(event, fn(..., ack)) there).
--- The last argument may be fun(err: string|nil, replies: table): one reply
--- per other node (the first argument of its ack); err after the adapter's
--- request timeout, with the replies that came.
---@param event string not a reserved name
---@return true
function Namespace:server_side_emit(event, ...) end
---@param room string|string[]
function Namespace:sockets_join(room) end
---@param room string
function Namespace:sockets_leave(room) end
---@param close? boolean
function Namespace:disconnect_sockets(close) end
---@return self
function Namespace:compress() end
---@return integer connected sockets in this namespace
function Namespace:socket_count() end

--- The Socket.IO server ("io"): the default namespace's methods, plus of(),
--- close() and client_count().
---@class lws.socketio.Server
---@field sockets lws.socketio.Namespace the default namespace "/"
---@field volatile lws.socketio.BroadcastOperator
---@field local_ lws.socketio.BroadcastOperator this node only (with a bus)
---@field opts lws.socketio.Options
local Server = {}
---@param name string "/admin" (a missing slash is added)
---@return lws.socketio.Namespace
function Server:of(name) end
--- Every session ends with "server shutting down" (no DISCONNECT: clients reconnect); new handshakes are refused.
function Server:close() end
---@return integer open Engine.IO sessions
function Server:client_count() end
--- The Socket.IO Admin UI's protocol (@socket.io/admin-ui 0.5's instrument()) on opts.namespace_name; raises on bad options, or when called twice.
---@param opts lws.socketio.InstrumentOptions
function Server:instrument(opts) end
---@param event string
---@param fn function
---@return self
function Server:on(event, fn) end
---@param event string
---@param fn function
---@return self
function Server:once(event, fn) end
---@param event? string
---@param fn? function
---@return self
function Server:off(event, fn) end
---@param event string
---@return integer
function Server:listener_count(event) end
---@param fn fun(socket: lws.socketio.Socket, next: fun(err?: string|{ message: string, data?: any }))
---@return self
function Server:use(fn) end
---@param room string|string[]
---@return lws.socketio.BroadcastOperator
function Server:to(room) end
---@param room string|string[]
---@return lws.socketio.BroadcastOperator
function Server:in_(room) end
Server["in"] = Server.in_
---@param room string|string[]
---@return lws.socketio.BroadcastOperator
function Server:except(room) end
---@param ms number
---@return lws.socketio.BroadcastOperator
function Server:timeout(ms) end
---@param event string
---@return true
function Server:emit(event, ...) end
---@return true
function Server:send(...) end
--- Without fn: this node's sockets, at once; with fn: every node's (see BroadcastOperator:fetch_sockets).
---@param fn? fun(err: string|nil, sockets: lws.socketio.RemoteSocket[])
---@return lws.socketio.Socket[]|nil
function Server:fetch_sockets(fn) end
--- The event reaches this namespace on every other node (nsp:on(event, fn(..., ack)) there).
--- The last argument may be fun(err: string|nil, replies: table): one reply
--- per other node (the first argument of its ack); err after the adapter's
--- request timeout, with the replies that came.
---@param event string not a reserved name
---@return true
function Server:server_side_emit(event, ...) end
---@param room string|string[]
function Server:sockets_join(room) end
---@param room string
function Server:sockets_leave(room) end
---@param close? boolean
function Server:disconnect_sockets(close) end
---@return self
function Server:compress() end
---@return integer connected sockets in "/"
function Server:socket_count() end

---@class lws.socketio.Binary
---@field data string

---@class lws.socketio
---@overload fun(server: lws.Server, opts?: lws.socketio.Options): lws.socketio.Server
---@field json lws.json
---@field parser table the wire formats (lws.socketio.parser)
---@field engine table Engine.IO sessions (lws.socketio.engine)
---@field adapter table the in-memory adapter (lws.socketio.adapter): adapter.new(nsp), adapter.Adapter
---@field Server table the server's metatable
---@field Namespace table the namespace's metatable
---@field Socket table the socket's metatable
local socketio = {}

---@param server lws.Server
---@param opts? lws.socketio.Options
---@return lws.socketio.Server
function socketio.new(server, opts) end
--- Bytes that travel as a binary attachment (and what binary arguments arrive as).
---@param bytes string
---@return lws.socketio.Binary
function socketio.binary(bytes) end
---@param v any
---@return boolean
function socketio.is_binary(v) end
--- The value of the adapter option that makes this node one more node of
--- a cluster of Node Socket.IO servers (@socket.io/redis-adapter 8.x,
--- classic pub/sub, or sharded with sharded = true) on one Redis; raises on bad options.
---@param opts? lws.socketio.RedisAdapterOptions
---@return lws.socketio.RedisAdapter
function socketio.redis_adapter(opts) end
--- The value of the adapter option that speaks @socket.io/redis-streams-adapter
--- 0.3's protocol: connection state recovery across nodes, Lua or Node.
---@param opts? lws.socketio.RedisStreamsAdapterOptions
---@return lws.socketio.RedisAdapter
function socketio.redis_streams_adapter(opts) end

return socketio
