-- The chatroom of the classic Socket.IO tutorial (server.js) in Lua:
-- "login" { userid, username } puts a user on the online list, "message"
-- goes to everyone, a disconnect logs the user out. login, logout and
-- message are broadcast to every client with sio:emit.
--   chatroom.attach(sio[, log[, bus]]) -> state { users = json object, count = n }
--   chatroom.serve(server[, socketio_opts[, log[, bus]]]) -> sio, state: the
--     page (public/, with its Content-Security-Policy) and the chatroom
-- With an lws.bus (several processes or machines sharing a Redis), the
-- messages reach every node (socketio's bus option) and the online list
-- is the bus's presence list of room "chatroom": each node registers the
-- users logged in on it, and a login or logout announces the list read
-- back from Redis (state then holds this node's view of it).
local json = require "lws.json"
local socketio = require "lws.socketio"

local M = {}

M.public = (debug.getinfo(1, "S").source:match("^@(.*)/[^/]*$") or ".") .. "/public"

-- scripts, styles and connections only from this server, no inline code
M.csp = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; "
	.. "connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"

function M.attach(sio, log, bus)
	log = log or function() end
	local state = { users = json.object {}, count = 0 }
	local sockets_of = {}   -- userid -> sockets logged in as that user
	local names = {}        -- userid -> username, of the users logged in here

	-- announce(event, user): sio:emit(event) with the online list; with a
	-- bus, the list every node registered (this node's own on a Redis error)
	local function announce(event, user)
		if not bus then
			return sio:emit(event, { onlineUsers = state.users, onlineCount = state.count, user = user })
		end
		bus:members("chatroom", function(list)
			if list then
				local users, count = json.object {}, 0
				for _, m in ipairs(list) do
					if users[m.member] == nil then count = count + 1 end
					users[m.member] = m.info
				end
				state.users, state.count = users, count
			end
			sio:emit(event, { onlineUsers = state.users, onlineCount = state.count, user = user })
		end)
	end

	local function logout(socket)
		local userid = socket.userid
		if userid == nil then return end
		socket.userid = nil
		local n = (sockets_of[userid] or 1) - 1
		sockets_of[userid] = n > 0 and n or nil
		-- the same user in another tab (or a reconnect that beat this
		-- disconnect) stays online
		if n > 0 or names[userid] == nil then return end
		local user = json.object { userid = userid, username = names[userid] }
		names[userid] = nil
		if bus then
			bus:leave("chatroom", userid)
		else
			state.users[userid] = nil
			state.count = state.count - 1
		end
		announce("logout", user)
		log(user.username .. " left the chatroom")
	end

	sio:on("connection", function(socket)
		socket:on("login", function(obj)
			if type(obj) ~= "table" then return end
			local userid, username = obj.userid, obj.username
			if type(userid) == "number" then userid = json.encode(userid) end
			if type(userid) ~= "string" or type(username) ~= "string" then return end
			if socket.userid ~= userid then
				logout(socket)
				socket.userid = userid
				sockets_of[userid] = (sockets_of[userid] or 0) + 1
			end
			names[userid] = username
			if bus then
				bus:join("chatroom", userid, username)
			elseif state.users[userid] == nil then
				state.users[userid] = username
				state.count = state.count + 1
			end
			announce("login", obj)
			log(username .. " joined the chatroom")
		end)

		socket:on("disconnect", function() logout(socket) end)

		socket:on("message", function(obj)
			sio:emit("message", obj)
			if type(obj) == "table" and type(obj.username) == "string" and type(obj.content) == "string" then
				log(obj.username .. " says: " .. obj.content)
			end
		end)
	end)
	return state
end

function M.serve(server, opts, log, bus)
	opts = opts or {}
	opts.bus = bus
	local sio = socketio(server, opts)
	local state = M.attach(sio, log, bus)
	server:static("/", M.public, { headers = {
		["Content-Security-Policy"] = M.csp,
		["Referrer-Policy"] = "no-referrer",
	} })
	return sio, state
end

return M
