// The reference for spec/socketio_admin_spec.lua: socket.io 4.8 with
// @socket.io/admin-ui 0.5's instrument(), driven over the control socket
// (control.js), running the same little app as the spec's Lua server.
//   node sio_admin_server.js CONTROL_PORT
// {cmd: "listen", auth, mode, readonly, namespaceName, serverId, redisPort}
//   -> {ev: "listening", port}; auth: false, or {username, password}
//   with a bcrypt hash; redisPort: on @socket.io/redis-adapter 8.3.
// The app, on "/" and "/chat": "join_me"(room) joins, "leave_me"(room)
// leaves, "hello"(x, ack) answers with "hi"(x) and ack("ok:" + x),
// "set_data"(v) sets socket.data.v; every connection gets
// socket.data.user = handshake.auth.user (when given) in a middleware.
// {cmd: "hash", password, rounds} -> {ev: "hash", hash} (bcryptjs, what
// instrument() checks with).
'use strict';
const http = require('http');
const path = require('path');
const nm = path.join(__dirname, '..', '..', 'node_modules');
const { Server } = require(path.join(nm, 'socket.io'));
const { instrument } = require(path.join(nm, '@socket.io', 'admin-ui'));
const bcrypt = require(path.join(nm, 'bcryptjs'));

const { out, serve } = require('./control');

function app(nsp) {
  nsp.use((socket, next) => {
    if (socket.handshake.auth && socket.handshake.auth.user) socket.data.user = socket.handshake.auth.user;
    next();
  });
  nsp.on('connection', (socket) => {
    socket.on('join_me', (room) => socket.join(room));
    socket.on('leave_me', (room) => socket.leave(room));
    socket.on('hello', (x, ack) => {
      socket.emit('hi', x);
      if (typeof ack === 'function') ack('ok:' + x);
    });
    socket.on('set_data', (v) => { socket.data.v = v; });
  });
}

const commands = {
  async listen(c) {
    const server = http.createServer();
    const sioOpts = { allowEIO3: true };
    if (c.redisPort) {
      // one more node of a cluster: @socket.io/redis-adapter on node-redis 4
      const { createAdapter } = require(path.join(nm, '@socket.io', 'redis-adapter'));
      const { createClient } = require(path.join(nm, 'redis'));
      const pub = createClient({ url: `redis://127.0.0.1:${c.redisPort}` });
      const sub = pub.duplicate();
      await Promise.all([pub.connect(), sub.connect()]);
      sioOpts.adapter = createAdapter(pub, sub);
    }
    const io = new Server(server, sioOpts);
    app(io.of('/'));
    app(io.of('/chat'));
    const opts = { auth: c.auth ? { type: 'basic', username: c.auth.username, password: c.auth.password } : false };
    if (c.mode) opts.mode = c.mode;
    if (c.readonly) opts.readonly = true;
    if (c.namespaceName) opts.namespaceName = c.namespaceName;
    if (c.serverId) opts.serverId = c.serverId;
    instrument(io, opts);
    server.listen(0, '127.0.0.1', () => out({ ev: 'listening', port: server.address().port }));
  },
  hash(c) { out({ ev: 'hash', hash: bcrypt.hashSync(c.password, c.rounds || 4) }); },
  exit() { process.exit(0); },
};

serve(commands, { stack: true });
