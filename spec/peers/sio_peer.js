// Socket.IO clients driven by a spec over a control socket.
//   node sio_peer.js CONTROL_PORT
// One process holds any number of clients, each the official
// socket.io-client 2.3.0 ("2") or 4.x ("4"). Commands and events are JSON
// lines, like ws_peer.js. Binary values travel as {"$bin": base64}; strings
// longer than 4096 characters are reported as {"$big": length, "$ok": bool},
// $ok telling whether they equal bigText(length) (generated on both sides,
// so a megabyte never crosses the control socket).
'use strict';
const path = require('path');
const nm = path.join(__dirname, '..', '..', 'node_modules');
const libs = {
  2: require(path.join(nm, 'socket.io-client-v2')),
  4: require(path.join(nm, 'socket.io-client')),
};

const { out, serve } = require('./control');

// text with every kind of character the framing must survive
const BLOCK = 'abc€😀\u2028\u2029\x1e\x00"\\:4é';
function bigText(len) {
  let s = BLOCK.repeat(Math.ceil(len / BLOCK.length) + 1);
  s = s.slice(0, len);
  // never end on half a surrogate pair
  const last = s.charCodeAt(s.length - 1);
  if (last >= 0xd800 && last <= 0xdbff) s = s.slice(0, -1) + 'x';
  return s;
}

// wire values <-> JS values
function fromWire(v) {
  if (Array.isArray(v)) return v.map(fromWire);
  if (v && typeof v === 'object') {
    if (typeof v.$bin === 'string') return Buffer.from(v.$bin, 'base64');
    if (typeof v.$bigText === 'number') return bigText(v.$bigText);
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
  if (typeof v === 'string' && v.length > 4096) return { $big: v.length, $ok: v === bigText(v.length) };
  if (Array.isArray(v)) return v.map(toWire);
  if (v && typeof v === 'object') {
    const o = {};
    for (const k of Object.keys(v)) o[k] = toWire(v[k]);
    return o;
  }
  return v;
}

// JSON with sorted keys: equal values give equal text, [] and {} apart
function canon(v) {
  if (Array.isArray(v)) return '[' + v.map(canon).join(',') + ']';
  if (v && typeof v === 'object') {
    return '{' + Object.keys(v).sort().map((k) => JSON.stringify(k) + ':' + canon(v[k])).join(',') + '}';
  }
  return JSON.stringify(v === undefined ? null : v);
}
// args of a command: argsJson (exact JSON from lws.json) or args
const argsOf = (c, j, a) => (c[j] !== undefined ? JSON.parse(c[j]) : c[a] || []);

const clients = {};

function transportOf(s, version) {
  try {
    return version === '2' ? s.io.engine.transport.name : s.io.engine.transport.name;
  } catch (e) { return null; }
}

const commands = {
  // {id, version, url, nsp?, transports?, forceBase64?, reconnection?,
  //  events: [names to report], echo: [names answered by ack with the
  //  same args], login: {event, args} emitted on every connect, auth?, query?,
  //  parser?: "msgpack" (socket.io-msgpack-parser, 4.x only)}
  connect(c) {
    const lib = libs[c.version];
    const opts = {
      reconnection: c.reconnection !== false,
      reconnectionDelay: c.reconnectionDelay || 100,
      reconnectionDelayMax: c.reconnectionDelayMax || 500,
      timeout: c.timeout || 5000,
      forceNew: true,
    };
    if (c.transports) opts.transports = c.transports;
    if (c.forceBase64) opts.forceBase64 = true;
    if (c.auth) opts.auth = c.auth;
    if (c.query) opts.query = c.query;
    if (c.upgrade === false) opts.upgrade = false;
    if (c.parser === 'msgpack') opts.parser = require(path.join(nm, 'socket.io-msgpack-parser'));
    const s = lib(c.url + (c.nsp || ''), opts);
    const id = c.id;
    clients[id] = { s, version: c.version };
    s.on('connect', () => {
      out({ ev: 'connect', id, sid: s.id, transport: transportOf(s, c.version), recovered: !!s.recovered });
      if (c.login) s.emit(c.login.event, ...fromWire(argsOf(c.login, 'argsJson', 'args')));
    });
    s.on('connect_error', (e) => out({ ev: 'connect_error', id, message: e && e.message !== undefined ? e.message : e, data: e && e.data }));
    s.on('error', (e) => out({ ev: 'error', id, message: e && e.message !== undefined ? e.message : e }));
    s.on('disconnect', (reason) => out({ ev: 'disconnect', id, reason }));
    const mgr = s.io;
    mgr.on('reconnect', (n) => out({ ev: 'reconnect', id, attempt: n }));
    const engineUp = () => {
      const eng = mgr.engine;
      if (eng && !eng.__watched) {
        eng.__watched = true;
        eng.on('upgrade', (t) => out({ ev: 'upgrade', id, transport: t.name }));
      }
    };
    mgr.on('open', engineUp);
    engineUp();
    for (const name of c.events || []) {
      s.on(name, (...args) => {
        const ack = typeof args[args.length - 1] === 'function' ? args.pop() : null;
        const w = toWire(args);
        out({ ev: 'event', id, event: name, args: w, json: canon(w), ack: !!ack });
        if (ack && (c.ackReply || c.ackReplyJson)) ack(...fromWire(argsOf(c, 'ackReplyJson', 'ackReply')));
      });
    }
    for (const name of c.echo || []) {
      s.on(name, (...args) => {
        const ack = typeof args[args.length - 1] === 'function' ? args.pop() : null;
        if (ack) ack(...args);
      });
    }
  },
  // {id, event, args, ack?: tag}: the ack reports {ev:'ack', tag, args}
  emit(c) {
    const { s } = clients[c.id];
    const wire = argsOf(c, 'argsJson', 'args');
    const args = fromWire(wire);
    if (c.ack !== undefined) {
      args.push((...a) => {
        const w = toWire(a);
        out({ ev: 'ack', id: c.id, tag: c.ack, args: w, json: canon(w), same: canon(w) === canon(wire) });
      });
    }
    s.emit(c.event, ...args);
  },
  // {id, event, count, tag}: count emits in one tick, args {seq, from}
  burst(c) {
    const { s } = clients[c.id];
    for (let i = 0; i < c.count; i++) s.emit(c.event, { from: c.tag, seq: i, text: 'm' + i + '\x1e😀' });
  },
  close(c) { clients[c.id].s.close(); },
  open(c) { clients[c.id].s.open(); },
  // {id}: drop the transport without telling the server (reconnect test)
  drop(c) {
    const eng = clients[c.id].s.io.engine;
    eng.transport.close();
  },
  // {id, url}: the next reconnection goes to url (a load balancer that
  // sends the client to another node), then drop the transport
  move(c) {
    const mgr = clients[c.id].s.io;
    mgr.uri = c.url;
    mgr.engine.transport.close();
  },
  state(c) {
    const cl = clients[c.id];
    out({ ev: 'state', id: c.id, connected: cl.s.connected, sid: cl.s.id, transport: transportOf(cl.s, cl.version) });
  },
  exit() { process.exit(0); },
};

serve(commands, { stack: true });
