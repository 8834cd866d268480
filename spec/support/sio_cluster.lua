--[[ spec/support/sio_cluster.lua: what the mixed-cluster Socket.IO specs
(spec/socketio_redis_adapter_spec.lua, spec/socketio_sharded_adapter_spec.lua)
share: waiting for Redis subscribers, connecting an official client
(spec/peers/sio_peer.js) and checking that each message arrives exactly
once where it should. ]]
local H = require "helper"
local redis = require "lws.redis"

local M = {}

--- wait_subscribers(port, channel, n[, how]): until n connections are
-- subscribed to channel; how is "NUMSUB" (classic pub/sub, the default) or
-- "SHARDNUMSUB" (sharded)
function M.wait_subscribers(port, channel, n, how)
	how = how or "NUMSUB"
	local r = redis.connect { port = port }
	local got, asked = -1, false
	local ok, err = pcall(H.run_until, function()
		if not asked and r:ready() then
			asked = true
			r:command({ "PUBSUB", how, channel }, function(reply)
				asked = false
				got = reply and tonumber(reply[2]) or -1
			end)
		end
		return got == n
	end, 15000, n .. " subscribers (" .. how .. ") of " .. channel, 50)
	r:close()
	if not ok then error(err .. " (last count " .. got .. ")", 2) end
end

--- connect(p, id, version, port[, opts]) -> sid: a client on peer p, once it
-- is connected (and upgraded to websocket unless opts.transports is given)
function M.connect(p, id, version, port, opts)
	opts = opts or {}
	p:cmd { cmd = "connect", id = id, version = version, transports = opts.transports, nsp = opts.nsp,
		url = "http://127.0.0.1:" .. port, events = { "msg", "bin", "ask" }, ackReply = { id } }
	local ev = p:wait("connect", 10000, function(e) return e.id == id end)
	if not opts.transports then p:wait("upgrade", 10000, function(e) return e.id == id end) end
	return ev.sid
end

--- expect(p, want, name[, text]): every id in want gets event name with
-- first argument text exactly once; nobody else gets it (within a grace
-- period after the last one came)
function M.expect(p, want, name, text)
	local set = {}
	for _, id in ipairs(want) do
		set[id] = true
		local ok, err = pcall(p.wait, p, "event", 10000, function(e)
			return e.id == id and e.event == name and (text == nil or e.args[1] == text)
		end)
		if not ok then error(("%s did not get '%s' %s: %s"):format(id, name, tostring(text), err), 2) end
	end
	H.run_for(300 * H.SLOW)
	for _, ev in ipairs(p.events) do
		if ev.ev == "event" and ev.event == name and (text == nil or ev.args[1] == text) then
			error(("%s got '%s' %s"):format(ev.id, name, set[ev.id] and "twice" or "but should not have"), 2)
		end
	end
end

--- sorted(t) -> a sorted copy
function M.sorted(t)
	local c = {}
	for i, v in ipairs(t) do c[i] = v end
	table.sort(c)
	return c
end

local tags = 0
--- tag() -> a fresh message text
function M.tag()
	tags = tags + 1
	return "t" .. tags
end

return M
