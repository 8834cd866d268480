-- wss:// on both sides: our TLS server (checked with Node's TLS stack and
-- ws client) and our client's certificate and hostname verification,
-- with a throwaway CA made at test time (spec/support/certs.lua).
local H = require "helper"
local lws = require "lws"
local certs = require "certs"

local clients = {}
local C   -- the certificates

local function client(url, opts)
	local ws = lws.WebSocket(url, nil, opts)
	clients[#clients + 1] = ws
	local rec = { ws = ws, events = {} }
	for _, name in ipairs { "open", "message", "error", "close" } do
		ws:on(name, function(...) rec.events[#rec.events + 1] = table.pack(name, ...) end)
	end
	function rec.wait(name, ms)
		local found
		H.run_until(function()
			for _, e in ipairs(rec.events) do
				if e[1] == name then found = e return true end
			end
		end, ms or 10000, "client event '" .. name .. "'")
		return found
	end
	-- the connection's first event: "open" or the error's message
	function rec.outcome()
		H.run_until(function() return rec.events[1] end, 10000, "the connection to open or fail")
		local e = rec.events[1]
		if e[1] == "open" then return "open" end
		assert.are.equal("error", e[1])
		local c = rec.wait("close")
		assert.are.same({ 1006, e[2], false }, { c[2], c[3], c[4] })
		return e[2], e[3]
	end
	return ws, rec
end

local function tls_server(cert, key)
	return H.echo_server { tls = { cert = cert or C.cert, key = key or C.key } }
end

local function wss(host, port) return ("wss://%s:%d/"):format(host, port) end

local function node()
	return H.node(H.ROOT .. "/spec/peers/ws_server.js")
end

describe("wss://", function()
	setup(function()
		C = certs.get()
	end)

	after_each(function()
		for _, ws in ipairs(clients) do ws:close() end
		clients = {}
		H.clean()
	end)

	it("our client verifies our server against a private CA, by name and by IP", function()
		local _, port = tls_server()
		for _, host in ipairs { "localhost", "127.0.0.1" } do
			local ws, rec = client(wss(host, port), { ca = C.ca })
			assert.are.equal("open", rec.outcome())
			ws:send("over tls")
			assert.are.equal("over tls", rec.wait("message")[2])
			ws:close(1000, "done")
			local e = rec.wait("close")
			assert.are.same({ 1000, "done", true }, { e[2], e[3], e[4] })
		end
	end)

	it("serves Node's ws client, which verifies the certificate", function()
		local _, port = tls_server()
		local p = node()
		p:cmd { cmd = "client", url = wss("localhost", port), ca = C.ca, send = "from node" }
		assert.is_truthy(p:wait("client-open"))
		assert.are.equal("from node", p:wait("client-message").data)
		local ev = p:wait("client-close")
		assert.are.same({ 1000, "done" }, { ev.code, ev.reason })
	end)

	it("offers TLS 1.2+ with forward-secret AEAD suites only", function()
		local _, port = tls_server(C.rsa_cert, C.rsa_key)
		local p = node()
		local function probe(t)
			t.cmd, t.port, t.ca = "tls_probe", port, C.ca
			p:cmd(t)
			return p:wait("tls")
		end
		local ev = probe {}
		assert.is_true(ev.ok, ev.error)
		assert.are.equal("TLSv1.3", ev.protocol)
		ev = probe { maxVersion = "TLSv1.2", ciphers = "ECDHE-RSA-AES128-GCM-SHA256" }
		assert.is_true(ev.ok, ev.error)
		assert.are.same({ "TLSv1.2", "ECDHE-RSA-AES128-GCM-SHA256" }, { ev.protocol, ev.cipher })
		ev = probe { maxVersion = "TLSv1.2", ciphers = "ECDHE-RSA-CHACHA20-POLY1305" }
		assert.is_true(ev.ok, ev.error)
		-- no forward secrecy (RSA key exchange), no AEAD (CBC), old versions
		for _, t in ipairs {
			{ maxVersion = "TLSv1.2", ciphers = "AES128-GCM-SHA256" },
			{ maxVersion = "TLSv1.2", ciphers = "AES256-SHA256" },
			{ maxVersion = "TLSv1.2", ciphers = "ECDHE-RSA-AES128-SHA" },
			{ minVersion = "TLSv1", maxVersion = "TLSv1.1", ciphers = "ALL:@SECLEVEL=0" },
		} do
			ev = probe(t)
			assert.is_false(ev.ok, "accepted " .. (t.ciphers or "") .. " " .. t.maxVersion)
		end
	end)

	it("our client verifies by default: an unknown CA fails, naming the check", function()
		local _, port = tls_server()
		local _, rec = client(wss("localhost", port))
		local msg, code = rec.outcome()
		assert.are.equal("tls-verify", code)
		assert.are.equal("TLS certificate verification failed for localhost:" .. port
			.. ": chain of trust check failed: unable to get local issuer certificate", msg)
	end)

	it("a self-signed certificate fails unless insecure = true", function()
		local _, port = tls_server(C.self_cert, C.self_key)
		local _, rec = client(wss("localhost", port), { ca = C.ca })
		local msg = rec.outcome()
		assert.matches("chain of trust check failed: self%-signed certificate$", msg)
		local _, rec2 = client(wss("localhost", port), { insecure = true })
		assert.are.equal("open", rec2.outcome())
	end)

	it("a certificate for another name fails the hostname check", function()
		local _, port = tls_server(C.other_cert, C.other_key)
		local _, rec = client(wss("localhost", port), { ca = C.ca })
		assert.are.equal("TLS certificate verification failed for localhost:" .. port
			.. ": hostname check failed: hostname mismatch (the certificate is not valid for 'localhost')",
			(rec.outcome()))
		local _, rec2 = client(wss("127.0.0.1", port), { ca = C.ca })
		assert.matches("hostname check failed: IP address mismatch", (rec2.outcome()))
		local _, rec3 = client(wss("localhost", port), { insecure = true })
		assert.are.equal("open", rec3.outcome())
	end)

	it("an expired certificate fails the validity check", function()
		local _, port = tls_server(C.expired_cert, C.expired_key)
		local _, rec = client(wss("localhost", port), { ca = C.ca })
		assert.matches(": validity period check failed: certificate has expired$", (rec.outcome()))
	end)

	it("each wss:// server presents its own certificate", function()
		local _, good = tls_server()
		local _, other = tls_server(C.other_cert, C.other_key)
		local _, rec = client(wss("localhost", other), { ca = C.ca })
		assert.matches("hostname mismatch", (rec.outcome()))
		local _, rec2 = client(wss("localhost", good), { ca = C.ca })
		assert.are.equal("open", rec2.outcome())
	end)

	it("an unreadable CA file is an error event; a bad server certificate an error return", function()
		local _, port = tls_server()
		local _, rec = client(wss("localhost", port), { ca = C.dir .. "/missing.pem" })
		local msg, code = rec.outcome()
		assert.are.equal("tls", code)
		assert.are.equal("TLS error with localhost:" .. port .. ": cannot read the CA file '" .. C.dir
			.. "/missing.pem': No such file or directory", msg)

		local srv, err, ecode = lws.server { port = 0, tls = { cert = C.dir .. "/missing.pem", key = C.key } }
		assert.is_nil(srv)
		assert.are.equal("tls", ecode)
		assert.matches("TLS", err)
	end)
end)
