---@meta lws.bus
-- lua-language-server definitions of lws.bus: broadcasts, topics and
-- application messages across nodes sharing a Redis
-- (docs/reference/bus.md). lws.bus(opts) is lws.bus.new(opts).

---@class lws.BusOptions
---@field redis? lws.RedisOptions|lws.RedisClient options for lws.redis.connect, or a connected client the bus does not own (default: a client to 127.0.0.1:6379)
---@field channel? string Redis channel and key prefix (default "lws")
---@field node_id? string this node's id, 1..200 bytes without a newline (default "<hostname>:<pid>:<random>")
---@field presence_ttl? number ms a node's presence survives without a refresh, >= 30 (default 15000)

---@class lws.BusStats
---@field sent integer
---@field received integer
---@field echoes integer our own messages seen again (ignored)
---@field dropped integer relays refused while Redis was down
---@field malformed integer
---@field ready boolean

---@class lws.BusEnvelope
---@field origin string the sender's node id
---@field kind string
---@field binary boolean
---@field targets string[]
---@field except string[]
---@field meta table<string, string>

---@class lws.BusMember
---@field node string
---@field member string
---@field info string

---@class lws.Bus
---@field redis lws.RedisClient
---@field channel string
---@field node_id string
local Bus = {}
---@return boolean ready messages can cross (publishing and subscribed)
function Bus:ready() end
--- To every other node (not delivered here).
---@param kind string
---@param fields? { targets?: string[], except?: string[], binary?: boolean, meta?: table<string, string> }
---@param payload string
---@return true|nil ok
---@return string? err
---@return string? code "closed", "down", "full"
function Bus:emit(kind, fields, payload) end
---@param kind string "broadcast", "topic" or an application kind
---@param fn fun(payload: string, envelope: lws.BusEnvelope)
---@return self
function Bus:on(kind, fn) end
---@param kind? string
---@param fn? function
---@return self
function Bus:off(kind, fn) end
--- Its broadcasts and publishes reach every node, and theirs its clients.
---@param server lws.Server
---@return self
function Bus:attach(server) end
---@param server lws.Server
---@return self
function Bus:detach(server) end
--- (called by server:broadcast after local delivery)
---@param server lws.Server
---@param data string
---@param binary? boolean
---@return true|nil ok
---@return string? err
---@return string? code
function Bus:relay_broadcast(server, data, binary) end
--- (called by server:publish after local delivery)
---@param server lws.Server
---@param topic string
---@param data string
---@param binary? boolean
---@return true|nil ok
---@return string? err
---@return string? code
function Bus:relay_publish(server, topic, data, binary) end
---@param room string
---@param member string
---@param info? string (default "")
---@return true|nil ok
---@return string? err
---@return string? code "closed", "down", "full"
function Bus:join(room, member, info) end
---@param room string
---@param member string
---@return true|nil ok
---@return string? err
---@return string? code "down", "full", "closed"
function Bus:leave(room, member) end
---@param room string
---@param fn fun(list: lws.BusMember[]|nil, err: string?, code: string?)
---@return true|nil ok
---@return string? err
---@return string? code "down", "full", "closed"
function Bus:members(room, fn) end
---@return lws.BusStats
function Bus:stats() end
--- Detach every server, withdraw this node's presence, close the Redis client if the bus made it.
function Bus:close() end

---@class lws.bus
---@field methods table the bus's methods
---@field mt table the bus's metatable
local bus = {}

---@param opts lws.BusOptions
---@return lws.Bus
function bus.new(opts) end
--- The envelope format (exported for specs).
---@param env { origin: string, kind: string, binary?: boolean, targets?: string[], except?: string[], meta?: table<string, string> }
---@param payload string
---@return string message
function bus.encode(env, payload) end
---@param message string
---@return lws.BusEnvelope|nil env
---@return string? payload_or_err
function bus.decode(message) end
---@return string id "<hostname>:<pid>:<random>"
function bus.default_node_id() end

return bus
