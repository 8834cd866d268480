-- busted output handler: a dot per test (LWS_SPEC_VERBOSE=1: one line per
-- test with its time), every failure with its message and traceback, and
-- the line CI looks for: "N passed, M failed".
return function(options)
	local busted = require "busted"
	local handler = require "busted.outputHandlers.base"()
	local pretty = require "pl.pretty"
	local verbose = os.getenv("LWS_SPEC_VERBOSE")
	local t0 = {}

	local function text(m)
		if type(m) == "string" then return m end
		if m == nil then return "nil error" end
		return pretty.write(m)
	end

	local function describe(kind, f)
		local where = ""
		if f.element and f.element.trace and f.element.trace.short_src then
			where = ("  at %s:%s\n"):format(f.element.trace.short_src, f.element.trace.currentline)
		end
		local tb = ""
		if f.trace and f.trace.traceback then tb = "\n  " .. f.trace.traceback:gsub("\n", "\n  ") end
		return ("%s: %s\n%s  %s%s\n"):format(kind, f.name or "?", where,
			(text(f.message):gsub("\n", "\n  ")), tb)
	end

	handler.testStart = function(element)
		t0[element] = os.time()
		if verbose then
			io.stdout:write(handler.getFullName(element), " ... ")
			io.stdout:flush()
		end
		return nil, true
	end

	handler.testEnd = function(element, parent, status)
		if verbose then
			io.stdout:write(status, " (", os.time() - (t0[element] or os.time()), " s)\n")
		else
			io.stdout:write(status == "success" and "." or status == "pending" and "p" or "F")
		end
		io.stdout:flush()
		return nil, true
	end

	handler.suiteEnd = function()
		io.stdout:write("\n")
		for _, f in ipairs(handler.failures) do io.stdout:write("\n", describe("FAILED", f)) end
		for _, f in ipairs(handler.errors) do io.stdout:write("\n", describe("ERROR", f)) end
		for _, p in ipairs(handler.pendings) do io.stdout:write("pending: ", p.name, "\n") end
		io.stdout:write(("\n%d passed, %d failed\n"):format(handler.successesCount,
			handler.failuresCount + handler.errorsCount))
		io.stdout:flush()
		return nil, true
	end

	busted.subscribe({ "test", "start" }, handler.testStart, { predicate = handler.cancelOnPending })
	busted.subscribe({ "test", "end" }, handler.testEnd, { predicate = handler.cancelOnPending })
	busted.subscribe({ "suite", "end" }, handler.suiteEnd)
	return handler
end
