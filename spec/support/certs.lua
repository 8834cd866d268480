--[[ spec/support/certs.lua: a throwaway CA and certificates, made with the
openssl command line in a fresh temporary directory the first time a spec
asks for them, removed when the Lua state closes. Nothing secret is
committed. EC P-256 keys: fast to make, and our TLS server's ECDHE-ECDSA
suites accept them.

  local certs = require "certs"
  local c = certs.get()
  c.ca            the private CA's certificate (trust anchor for `ca = …`)
  c.cert, c.key   "localhost" and 127.0.0.1, signed by the CA
  c.self_cert, c.self_key        self-signed, for localhost / 127.0.0.1
  c.other_cert, c.other_key      signed by the CA, only for other.test
  c.expired_cert, c.expired_key  signed by the CA, expired in 2020
  c.rsa_cert, c.rsa_key          like cert/key with an RSA key (cipher checks)
  c.dir           the temporary directory
]]
local M = {}

local function sh(cmd)
	local ok, how, code = os.execute(cmd .. " >/dev/null 2>&1")
	if not ok then error(("command failed (%s %s): %s"):format(how, code, cmd), 3) end
end

local function q(s) return "'" .. s:gsub("'", "'\\''") .. "'" end

local function write(path, text)
	local f = assert(io.open(path, "w"))
	f:write(text)
	f:close()
end

local made

local function make()
	local tmp = os.tmpname()   -- a unique name; we want a directory there
	os.remove(tmp)
	local dir = tmp .. ".certs"
	sh("mkdir -m 700 " .. q(dir))
	local function p(name) return dir .. "/" .. name end
	local key = "-newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes"

	-- the CA
	sh(("openssl req -x509 %s -keyout %s -out %s -days 2 -subj '/CN=lws spec CA' "
		.. "-addext basicConstraints=critical,CA:TRUE -addext keyUsage=critical,keyCertSign,cRLSign")
		:format(key, q(p "ca.key"), q(p "ca.pem")))

	-- a leaf signed by the CA: name, CN, SAN, validity
	local function leaf(name, cn, san, days, keyopt)
		write(p(name .. ".ext"), "basicConstraints=CA:FALSE\nkeyUsage=digitalSignature\n"
			.. "extendedKeyUsage=serverAuth\nsubjectAltName=" .. san .. "\n")
		sh(("openssl req %s -keyout %s -out %s -subj %s"):format(keyopt or key, q(p(name .. ".key")),
			q(p(name .. ".csr")), q("/CN=" .. cn)))
		sh(("openssl x509 -req -in %s -CA %s -CAkey %s -CAcreateserial -out %s -days %d -extfile %s")
			:format(q(p(name .. ".csr")), q(p "ca.pem"), q(p "ca.key"), q(p(name .. ".pem")), days,
				q(p(name .. ".ext"))))
	end
	leaf("server", "localhost", "DNS:localhost,IP:127.0.0.1", 2)
	leaf("other", "other.test", "DNS:other.test", 2)
	leaf("rsa", "localhost", "DNS:localhost,IP:127.0.0.1", 2, "-newkey rsa:2048 -nodes")

	-- expired: `openssl ca` is the one command that takes explicit dates
	write(p "ca.cnf", ([[
[ ca ]
default_ca = spec
[ spec ]
dir = %s
database = %s/index.txt
new_certs_dir = %s
serial = %s/serial
default_md = sha256
policy = any
copy_extensions = copy
unique_subject = no
[ any ]
commonName = supplied
]]):format(dir, dir, dir, dir))
	write(p "index.txt", "")
	write(p "serial", "1000\n")
	sh(("openssl req %s -keyout %s -out %s -subj '/CN=localhost' "
		.. "-addext subjectAltName=DNS:localhost,IP:127.0.0.1")
		:format(key, q(p "expired.key"), q(p "expired.csr")))
	sh(("openssl ca -batch -notext -config %s -cert %s -keyfile %s -in %s -out %s "
		.. "-startdate 20200101000000Z -enddate 20200102000000Z")
		:format(q(p "ca.cnf"), q(p "ca.pem"), q(p "ca.key"), q(p "expired.csr"), q(p "expired.pem")))

	-- self-signed
	sh(("openssl req -x509 %s -keyout %s -out %s -days 2 -subj '/CN=localhost' "
		.. "-addext subjectAltName=DNS:localhost,IP:127.0.0.1")
		:format(key, q(p "self.key"), q(p "self.pem")))

	return {
		dir = dir, ca = p "ca.pem",
		cert = p "server.pem", key = p "server.key",
		other_cert = p "other.pem", other_key = p "other.key",
		expired_cert = p "expired.pem", expired_key = p "expired.key",
		self_cert = p "self.pem", self_key = p "self.key",
		rsa_cert = p "rsa.pem", rsa_key = p "rsa.key",
		-- removes the directory when this table is collected (at the latest
		-- when the Lua state closes)
		_cleanup = setmetatable({}, { __gc = function() os.execute("rm -rf " .. q(dir)) end }),
	}
end

function M.get()
	made = made or make()
	return made
end

--- available() -> true if the openssl command can be run
function M.available()
	return os.execute("openssl version >/dev/null 2>&1") == true
end

return M
