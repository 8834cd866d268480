// A Node `ws` peer driven by a spec over a control socket.
//   node ws_peer.js CONTROL_PORT
// Commands and events are JSON lines. The spec (spec/helper.lua) sends
// {cmd: ...}; this process answers with {ev: ...}. Binary payloads travel
// as base64; big payloads are generated here from a shared pattern and
// checked here against what was sent, so 16 MiB never crosses the pipe.
'use strict';
const path = require('path');
const WebSocket = require(path.join(__dirname, '..', '..', 'node_modules', 'ws'));

const { out, serve } = require('./control');

// the same pattern as helper.pattern() in Lua
function pattern(size, binary) {
  const block = Buffer.alloc(binary ? 256 : 95);
  for (let i = 0; i < block.length; i++) block[i] = binary ? (i * 7 + 3) & 255 : 32 + ((i * 11) % 95);
  const b = Buffer.alloc(size);
  for (let off = 0; off < size; off += block.length) block.copy(b, off, 0, Math.min(block.length, size - off));
  return b;
}

function payloadOf(c) {
  if (c.size !== undefined) return pattern(c.size, !!c.binary);
  if (c.b64 !== undefined) return Buffer.from(c.b64, 'base64');
  return Buffer.from(c.data || '', 'utf8');
}

let ws = null;
const sent = [];   // payloads sent and not yet matched by an echo

function describe(data, isBinary) {
  const buf = Buffer.isBuffer(data) ? data : Buffer.from(data);
  const ev = { ev: 'message', binary: isBinary, len: buf.length };
  if (sent.length) ev.match = sent.shift().equals(buf);
  if (buf.length <= 65536) ev.b64 = buf.toString('base64');
  if (!isBinary && buf.length <= 65536) ev.data = buf.toString('utf8');
  return ev;
}

function attach(sock) {
  ws = sock;
  ws.on('open', () => out({ ev: 'open', protocol: ws.protocol, extensions: ws.extensions }));
  ws.on('upgrade', (res) => out({ ev: 'upgrade', status: res.statusCode, headers: res.headers }));
  ws.on('message', (data, isBinary) => out(describe(data, isBinary)));
  ws.on('ping', (d) => out({ ev: 'ping', data: d.toString() }));
  ws.on('pong', (d) => out({ ev: 'pong', data: d.toString() }));
  ws.on('close', (code, reason) => out({ ev: 'close', code, reason: reason.toString() }));
  ws.on('error', (e) => out({ ev: 'error', message: e.message }));
  ws.on('unexpected-response', (req, res) => {
    let body = '';
    res.on('data', (d) => { body += d; });
    res.on('end', () => {
      out({ ev: 'unexpected-response', status: res.statusCode, headers: res.headers, body });
      req.destroy();
    });
  });
}

// N clients, each doing M strict request/response echoes of `size` bytes
function many(c) {
  let opened = 0, done = 0, errors = 0, closed = 0;
  const finish = () => { if (done + errors === c.clients) out({ ev: 'many-done', opened, done, errors }); };
  for (let i = 0; i < c.clients; i++) {
    const s = new WebSocket(c.url, { perMessageDeflate: false });
    let left = c.messages;
    const msg = pattern(c.size || 16, false).toString() + '#' + i;
    s.on('open', () => { opened++; s.send(msg); });
    s.on('message', (d) => {
      if (d.toString() !== msg) { errors++; s.terminate(); finish(); return; }
      if (--left === 0) { done++; s.close(1000); finish(); } else s.send(msg);
    });
    s.on('error', () => { errors++; finish(); });
    s.on('close', () => { closed++; if (closed === c.clients) out({ ev: 'many-closed' }); });
  }
}

// N readers: each may send c.hello on open, then expects messages
// "<tag>:<seq>" with seq 1..c.expect exactly once and in order per tag
function fanout(c) {
  let opened = 0, finished = 0;
  const errors = [];
  const readers = [];
  for (let i = 0; i < c.clients; i++) {
    const s = new WebSocket(c.url, { perMessageDeflate: false });
    const last = {};
    let got = 0;
    readers.push(s);
    s.on('open', () => {
      if (c.hello) s.send(c.hello);
      if (++opened === c.clients) out({ ev: 'fanout-open', opened });
    });
    s.on('message', (d) => {
      const [tag, n] = d.toString().split(':');
      const seq = Number(n);
      if (seq !== (last[tag] || 0) + 1) errors.push(`client ${i} tag ${tag}: got ${seq} after ${last[tag] || 0}`);
      last[tag] = seq;
      got++;
      if (c.progress && got % c.progress === 0) out({ ev: 'fanout-progress', client: i, got });
      if (got === c.expect) { if (++finished === c.clients) out({ ev: 'fanout-done', finished, errors: errors.slice(0, 10), nerrors: errors.length }); }
      if (got > c.expect) errors.push(`client ${i}: more than ${c.expect} messages`);
    });
    s.on('error', (e) => errors.push(`client ${i}: ${e.message}`));
  }
  commands.fanout_close = () => readers.forEach((s) => s.close(1000));
}

const commands = {
  fanout,
  connect(c) {
    const opts = { perMessageDeflate: typeof c.deflate === 'object' ? c.deflate : !!c.deflate, headers: c.headers || {} };
    if (c.origin) opts.origin = c.origin;
    if (c.maxPayload) opts.maxPayload = c.maxPayload;
    attach(new WebSocket(c.url, c.protocols || [], opts));
  },
  send(c) {
    const p = payloadOf(c);
    if (c.track !== false) sent.push(p);
    ws.send(p, { binary: !!c.binary, fin: c.fin !== false, compress: false });
  },
  fragments(c) {
    const parts = c.parts.map((x) => Buffer.from(x, 'utf8'));
    sent.push(Buffer.concat(parts));
    parts.forEach((p, i) => ws.send(p, { binary: !!c.binary, fin: i === parts.length - 1 }));
  },
  ping(c) { ws.ping(c.data || ''); },
  pong(c) { ws.pong(c.data || ''); },
  close(c) { c.code === undefined ? ws.close() : ws.close(c.code, c.reason || ''); },
  terminate() { ws.terminate(); },
  pause() { ws.pause(); },
  resume() { ws.resume(); },
  state() { out({ ev: 'state', readyState: ws ? ws.readyState : -1, buffered: ws ? ws.bufferedAmount : 0 }); },
  many,
  exit() { process.exit(0); },
};

serve(commands);
