// A Node Socket.IO node of a mixed cluster: socket.io 4.8 with
// @socket.io/redis-adapter 8.3 on node-redis 4, driven by
// spec/socketio_redis_adapter_spec.lua over the control socket (control.js).
//   node sio_redis_server.js CONTROL_PORT REDIS_PORT [sharded MODE]
// With "sharded", createShardedAdapter (Redis 7 sharded pub/sub) with
// subscriptionMode MODE (spec/socketio_sharded_adapter_spec.lua). With
// "streams", @socket.io/redis-streams-adapter 0.3's createAdapter and
// connectionStateRecovery (spec/socketio_streams_adapter_spec.lua); with
// "streams sharded", its useShardedPubSub.
// {cmd: "listen"} -> {ev: "listening", port} once both Redis clients are up.
// Operations name a namespace (nsp, default "/") and rooms/except lists;
// results come back as events carrying the command's tag. The namespace
// "/" and "/admin" answer serverSideEmit("ping_sse", x, ack) with
// ack("node:" + x). Binary values travel as {"$bin": base64}.
'use strict';
const http = require('http');
const path = require('path');
const nm = path.join(__dirname, '..', '..', 'node_modules');
const { Server } = require(path.join(nm, 'socket.io'));
const { createAdapter, createShardedAdapter } = require(path.join(nm, '@socket.io', 'redis-adapter'));
const { createClient } = require(path.join(nm, 'redis'));
const streams = require(path.join(nm, '@socket.io', 'redis-streams-adapter'));

const { out, serve } = require('./control');

const redisPort = Number(process.argv[3]);
const sharded = process.argv[4] === 'sharded';
const streamed = process.argv[4] === 'streams';
const subscriptionMode = process.argv[5] || 'dynamic';
let io;

function fromWire(v) {
  if (Array.isArray(v)) return v.map(fromWire);
  if (v && typeof v === 'object') {
    if (typeof v.$bin === 'string') return Buffer.from(v.$bin, 'base64');
    const o = {};
    for (const k of Object.keys(v)) o[k] = fromWire(v[k]);
    return o;
  }
  return v;
}
function toWire(v) {
  if (v === undefined) return null;
  if (Buffer.isBuffer(v) || v instanceof ArrayBuffer || ArrayBuffer.isView(v)) {
    return { $bin: Buffer.from(v instanceof ArrayBuffer ? new Uint8Array(v) : v).toString('base64') };
  }
  if (v instanceof Set) return [...v].sort();
  if (Array.isArray(v)) return v.map(toWire);
  if (v && typeof v === 'object') {
    const o = {};
    for (const k of Object.keys(v)) o[k] = toWire(v[k]);
    return o;
  }
  return v;
}

// the operator a command names: nsp, rooms, except, flags
function operator(c) {
  let op = io.of(c.nsp || '/');
  for (const r of c.rooms || []) op = op.to(r);
  for (const r of c.except || []) op = op.except(r);
  if (c.volatile) op = op.volatile;
  if (c.timeout) op = op.timeout(c.timeout);
  return op;
}

function socketOf(c) {
  const s = io.of(c.nsp || '/').sockets.get(c.sid);
  if (!s) throw new Error('no socket ' + c.sid);
  return s;
}

const commands = {
  async listen() {
    const pub = createClient({ url: `redis://127.0.0.1:${redisPort}` });
    const sub = pub.duplicate();
    pub.on('error', (e) => out({ ev: 'redis-error', message: e.message }));
    sub.on('error', (e) => out({ ev: 'redis-error', message: e.message }));
    await Promise.all([pub.connect(), sub.connect()]);
    const server = http.createServer();
    let adapter;
    const opts = { allowEIO3: true };
    if (streamed) {
      adapter = streams.createAdapter(pub, { useShardedPubSub: process.argv[5] === 'sharded' });
      opts.connectionStateRecovery = { maxDisconnectionDuration: 60000 };
    } else {
      adapter = sharded ? createShardedAdapter(pub, sub, { subscriptionMode }) : createAdapter(pub, sub);
    }
    opts.adapter = adapter;
    io = new Server(server, opts);
    for (const name of ['/', '/admin']) {
      const nsp = io.of(name);
      nsp.on('connection', (s) => out({ ev: 'connection', nsp: name, sid: s.id, recovered: !!s.recovered,
        rooms: [...s.rooms].sort(), data: toWire(s.data) }));
      nsp.on('ping_sse', (x, ack) => {
        out({ ev: 'sse', nsp: name, arg: toWire(x) });
        if (ack) ack('node:' + x);
      });
      nsp.on('note_sse', (x) => out({ ev: 'sse', nsp: name, arg: toWire(x) }));
    }
    server.listen(0, '127.0.0.1', () => out({ ev: 'listening', port: server.address().port }));
  },
  // {nsp, rooms, except, event, args}
  emit(c) { operator(c).emit(c.event, ...fromWire(c.args || [])); },
  // {nsp, sid, event, args}: socket.broadcast.emit / socket.to(rooms).emit
  socket_emit(c) {
    const s = socketOf(c);
    let op = c.rooms ? s.to(c.rooms) : s.broadcast;
    op.emit(c.event, ...fromWire(c.args || []));
  },
  join(c) { socketOf(c).join(c.room); out({ ev: 'joined', tag: c.tag }); },
  // {nsp, sid, data, tag}: socket.data = data
  set_data(c) { socketOf(c).data = fromWire(c.data); out({ ev: 'data-set', tag: c.tag }); },
  // {nsp, rooms, except, tag} -> {ev: "fetched", tag, sockets: [{id, rooms, data, handshake}]}
  async fetch(c) {
    try {
      const list = await operator(c).fetchSockets();
      out({ ev: 'fetched', tag: c.tag, sockets: list.map((s) => ({ id: s.id, rooms: toWire(s.rooms),
        data: toWire(s.data), query: s.handshake.query, address: s.handshake.address })) });
    } catch (e) { out({ ev: 'fetched', tag: c.tag, error: e.message }); }
  },
  // {nsp, event, args, tag} -> {ev: "sse-replies", tag, error, replies}
  async sse(c) {
    const nsp = io.of(c.nsp || '/');
    if (!c.tag) { nsp.serverSideEmit(c.event, ...fromWire(c.args || [])); return; }
    try {
      const replies = await nsp.serverSideEmitWithAck(c.event, ...fromWire(c.args || []));
      out({ ev: 'sse-replies', tag: c.tag, replies: toWire(replies) });
    } catch (e) { out({ ev: 'sse-replies', tag: c.tag, error: e.message, replies: toWire(e.responses) }); }
  },
  // {nsp, rooms, except, timeout, event, args, tag} -> {ev: "acks", tag, error, responses}
  ask(c) {
    operator(c).emit(c.event, ...fromWire(c.args || []), (err, responses) => {
      out({ ev: 'acks', tag: c.tag, error: err ? err.message : undefined, responses: toWire(responses).sort() });
    });
  },
  sockets_join(c) { operator(c).socketsJoin(c.room); },
  sockets_leave(c) { operator(c).socketsLeave(c.room); },
  disconnect_sockets(c) { operator(c).disconnectSockets(!!c.close); },
  // {nsp, tag} -> {ev: "all-rooms", tag, rooms}
  async all_rooms(c) {
    try {
      out({ ev: 'all-rooms', tag: c.tag, rooms: toWire(await io.of(c.nsp || '/').adapter.allRooms()) });
    } catch (e) { out({ ev: 'all-rooms', tag: c.tag, error: e.message }); }
  },
  // {tag} -> {ev: "server-count", tag, n}
  async server_count(c) { out({ ev: 'server-count', tag: c.tag, n: await io.of('/').adapter.serverCount() }); },
  exit() { process.exit(0); },
};

serve(commands, { stack: true });
