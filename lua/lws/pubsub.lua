--[[ lws.pubsub: broadcast and topics on a server.

  server:broadcast(data[, binary][, { except = ws }])
  ws:subscribe("prices"); server:publish("prices", data)
  server:topic("prices", { conflate = true })   -- latest value wins

Design criteria:
 - A message is copied once into a shared, reference-counted C buffer and
   queued to every recipient (core.send_many): no per-recipient copy.
 - Each connection keeps its own bounded queue. When a recipient's queue
   is full: with slow_consumer = "close" it is failed with 1008; otherwise
   it misses this message (counted: publish returns queued, refused). A
   topic with drop_oldest = true lets a new message evict the oldest
   queued messages of such topics instead. A topic with conflate = true
   keeps only its newest message in a slow reader's queue (prices).
 - Subscriptions end with the connection.
]]
local core = require "lws.core"

local send_many = core.send_many
local M = {}

local function topics_of(srv)
	local f = srv:fields()
	local t = f._topics
	if not t then t = {}; f._topics = t end
	return t
end

local function topic(srv, name, create)
	local t = topics_of(srv)
	local tp = t[name]
	if not tp and create then
		tp = { subs = {}, n = 0 }
		t[name] = tp
	end
	return tp
end

local function check_name(name, fname)
	if type(name) ~= "string" or name == "" then
		error("bad argument #1 to '" .. fname .. "' (topic name expected)", 3)
	end
end

local topic_spec = { conflate = "boolean", drop_oldest = "boolean" }

--- server:topic(name, { conflate = bool, drop_oldest = bool }) -> server
local function server_topic(srv, name, opts)
	check_name(name, "topic")
	opts = require("lws.options").check(opts or {}, topic_spec, 2)
	local tp = topic(srv, name, true)
	tp.conflate, tp.drop_oldest = opts.conflate and true or false, opts.drop_oldest and true or false
	tp.opts = { key = tp.conflate and name or nil, droppable = tp.drop_oldest }
	return srv
end

--- local_publish(srv, topic, data[, binary]) -> queued, refused: this
-- node's subscribers only (lws.bus delivers other nodes' messages with it)
function M.local_publish(srv, name, data, binary)
	local tp = topic(srv, name)
	if not tp or tp.n == 0 then return 0, 0 end
	return send_many(tp.subs, data, binary, nil, tp.opts)
end

--- local_broadcast(srv, data[, binary][, opts]) -> queued, refused: this
-- node's clients only
function M.local_broadcast(srv, data, binary, opts)
	return srv:send_all(data, binary, opts and opts.except or nil)
end

--- server:publish(topic, data[, binary]) -> queued, refused (here); with
-- a bus attached (lws.bus) also to every other node's subscribers
local function server_publish(srv, name, data, binary)
	check_name(name, "publish")
	if type(data) ~= "string" then
		error("bad argument #2 to 'publish' (string expected, got " .. type(data) .. ")", 2)
	end
	local queued, refused = M.local_publish(srv, name, data, binary)
	local bus = srv:fields()._bus
	if bus then bus:relay_publish(srv, name, data, binary) end
	return queued, refused
end

--- server:broadcast(data[, binary][, { except = ws }]) -> queued, refused
-- (here); with a bus attached also to every other node's clients
local function server_broadcast(srv, data, binary, opts)
	if type(binary) == "table" then binary, opts = nil, binary end
	if type(data) ~= "string" then
		error("bad argument #1 to 'broadcast' (string expected, got " .. type(data) .. ")", 2)
	end
	local queued, refused = M.local_broadcast(srv, data, binary, opts)
	local bus = srv:fields()._bus
	if bus then bus:relay_broadcast(srv, data, binary, opts) end
	return queued, refused
end

local function conn_subscribe(ws, name)
	check_name(name, "subscribe")
	local f = ws:fields()
	local srv = core.server_of(ws)
	if not srv or ws.readyState ~= 1 then return nil, "connection is not open", "closed" end
	local mine = f._topics
	if not mine then mine = {}; f._topics = mine end
	if mine[name] then return true end
	local tp = topic(srv, name, true)
	tp.subs[ws] = true
	tp.n = tp.n + 1
	mine[name] = tp
	return true
end

local function conn_unsubscribe(ws, name)
	check_name(name, "unsubscribe")
	local f = ws:fields()
	local tp = f._topics and f._topics[name]
	if not tp then return false end
	f._topics[name] = nil
	tp.subs[ws] = nil
	tp.n = tp.n - 1
	return true
end

local function conn_is_subscribed(ws, name)
	local t = ws:fields()._topics
	return t ~= nil and t[name] ~= nil
end

--- called when a connection closes
function M.forget(ws)
	local f = ws:fields()
	local mine = f._topics
	if not mine then return end
	for _, tp in pairs(mine) do
		if tp.subs[ws] then
			tp.subs[ws] = nil
			tp.n = tp.n - 1
		end
	end
	f._topics = nil
end

--- server:subscribers(topic) -> count
local function server_subscribers(srv, name)
	local tp = topic(srv, name)
	return tp and tp.n or 0
end

function M.install(server_methods, conn_methods)
	server_methods.topic = server_topic
	server_methods.publish = server_publish
	server_methods.broadcast = server_broadcast
	server_methods.subscribers = server_subscribers
	conn_methods.subscribe = conn_subscribe
	conn_methods.unsubscribe = conn_unsubscribe
	conn_methods.is_subscribed = conn_is_subscribed
end

return M
