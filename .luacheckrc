-- luacheck (Debian lua-check): `make lint`, run by `make test` and CI.
std = "lua54"
max_line_length = 140
-- callbacks take the arguments their caller passes, used or not
unused_args = false
-- the specs run under busted (describe, it, assert.*, …)
files["spec"] = { std = "+busted" }
-- vendored Socket.IO browser bundles are JavaScript; nothing else excluded
exclude_files = { "lua/lws/socketio/client2", "lua/lws/socketio/client4" }
