-- What an idle connection costs the server, measured in this process while
-- Node's `ws` holds the connections open, against the accounting in
-- bench/README.md ("Idle memory under 2 KiB"): the Lua side is the
-- connection's userdata (csrc/conn_lua.c conn_sizes) and one field table
-- with one slot (its "message" handler), the C side libwebsockets' wsi and
-- what hangs off it. A change that adds a table per connection, a field to
-- struct conn past its budget, or an allocation lws keeps per connection
-- fails here before it shows in a benchmark.
local H = require "helper"
local lws = H.lws

-- Lua 5.4 (lobject.h, ltable.c): a table is 56 bytes and each hash node 24;
-- collectgarbage("count") counts what Lua asked for, without malloc's own
local TABLE, NODE = 56, 24
-- struct conn's budget: 336 bytes keeps the userdata (with Lua's 72-byte
-- header and two user values) in a 416-byte malloc chunk
local CONN_BUDGET = 336
-- libwebsockets 4.1.6 per accepted socket: its struct lws (952 bytes on
-- x86-64), the event library's watcher and the descriptor's slots in
-- lws's and libev's tables (bench/README.md)
local LWS_BUDGET = 1200

local N = 300

-- under ASan or valgrind malloc is theirs: mallinfo2 says nothing of ours
local own_malloc = not (os.getenv("LD_PRELOAD") or ""):find("asan")
	and not os.getenv("LWS_VALGRIND")

local function settle()
	collectgarbage()
	collectgarbage()
	return collectgarbage("count") * 1024, lws.stats().heap_in_use
end

describe("memory per idle connection", function()
	after_each(H.clean)

	it("is the userdata, one field table and libwebsockets' wsi", function()
		local sizes = lws.core.conn_sizes()
		assert.is_true(sizes.conn <= CONN_BUDGET,
			("struct conn is %d bytes, over its %d-byte budget"):format(sizes.conn, CONN_BUDGET))

		local srv = H.server {}
		-- one handler for all: the connection comes last (no closure each)
		local got = 0
		local function echo(data, binary, ws) got = got + 1; ws:send(data, binary) end
		srv:on("connection", function(ws) ws:on("message", echo) end)
		local port = srv:port()

		-- one-time allocations (lws's tables, the registry's array) first
		local warm = H.node()
		warm:cmd { cmd = "fanout", url = H.ws_url(port), clients = N, expect = 1 }
		warm:wait("fanout-open")
		H.run_until(function() return srv:connection_count() == N end, 10000, "warm-up connections")
		warm:cmd { cmd = "fanout_close" }
		H.run_until(function() return srv:connection_count() == 0 end, 10000, "warm-up closes")

		local lua0, heap0 = settle()
		local p = H.node()
		p:cmd { cmd = "fanout", url = H.ws_url(port), clients = N, expect = 1, hello = "hi" }
		p:wait("fanout-open")
		H.run_until(function() return srv:connection_count() == N and got == N end, 10000,
			"all connections open and answered")
		p:wait("fanout-done")
		local lua1, heap1 = settle()

		local lua_each = (lua1 - lua0) / N
		-- plus the registry slot pinning each userdata (16 bytes, more
		-- while its array has just doubled), Lua's table rounding, and under
		-- valgrind ~30 bytes more; still less than a closure per connection (80)
		local lua_budget = sizes.userdata + TABLE + NODE + 64
		assert.is_true(lua_each <= lua_budget,
			("Lua heap per idle connection %.0f bytes, accounted %d"):format(lua_each, lua_budget))
		assert.is_true(lua_each >= sizes.userdata,
			("Lua heap per connection %.0f bytes: less than its userdata (%d)?"):format(lua_each, sizes.userdata))
		if own_malloc and heap1 > 0 then
			local c_each = (heap1 - heap0) / N - lua_each
			assert.is_true(c_each <= LWS_BUDGET,
				("C heap outside Lua per idle connection %.0f bytes, accounted %d"):format(c_each, LWS_BUDGET))
		end
		p:cmd { cmd = "fanout_close" }
		H.run_until(function() return srv:connection_count() == 0 end, 10000, "closes")
	end)
end)
