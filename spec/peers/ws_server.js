// A Node `ws` SERVER peer driven by a spec over a control socket (the same
// JSON-lines protocol as ws_peer.js, so spec/helper.lua's H.node(script)
// starts and drives it).
//   node ws_server.js CONTROL_PORT
// {cmd: "listen", port, tls: {cert, key}, ...behaviours} -> {ev: "listening", port}
// Behaviours (all optional): refuse = {status, body, headers} answers the
// upgrade with that HTTP status; close_on_open = {code, reason} closes each
// connection as soon as it opens; protocol = "name" | false picks the
// subprotocol (default: the first offered); force_protocol = "name" answers
// with that one whatever was offered; echo = false stops echoing.
// Connections are numbered; events name them by id. Big payloads are
// generated from the shared pattern and never cross the control socket.
// It also probes our servers (tls_probe, client): a TLS stack and a ws
// client we did not write, checking what our wss:// server offers.
'use strict';
const fs = require('fs');
const http = require('http');
const https = require('https');
const tls = require('tls');
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

let web = null;      // the http(s) server
let wss = null;      // the ws server on it
let opts = {};
let nextId = 1;
const conns = new Map();   // id -> ws

function describe(id, data, isBinary) {
  const buf = Buffer.isBuffer(data) ? data : Buffer.from(data);
  const ev = { ev: 'message', id, binary: isBinary, len: buf.length };
  if (buf.length <= 65536) {
    ev.b64 = buf.toString('base64');
    if (!isBinary) ev.data = buf.toString('utf8');
  } else {
    ev.pattern = buf.equals(pattern(buf.length, isBinary));
  }
  return ev;
}

function listen(c) {
  opts = c;
  const handler = (req, res) => { res.writeHead(426); res.end('WebSocket only\n'); };
  web = c.tls
    ? https.createServer({ cert: fs.readFileSync(c.tls.cert), key: fs.readFileSync(c.tls.key) }, handler)
    : http.createServer(handler);
  wss = new WebSocket.Server({
    noServer: true,
    perMessageDeflate: false,
    maxPayload: c.maxPayload || 64 * 1024 * 1024,
    handleProtocols: (protocols) => {
      if (c.protocol === false) return false;
      if (typeof c.protocol === 'string') return protocols.has(c.protocol) ? c.protocol : false;
      const first = protocols.values().next();
      return first.done ? false : first.value;
    },
  });
  // force_protocol: answer with a subprotocol whatever was offered (a broken server)
  wss.on('headers', (headers) => { if (c.force_protocol) headers.push('Sec-WebSocket-Protocol: ' + c.force_protocol); });
  web.on('upgrade', (req, socket, head) => {
    if (c.refuse) {
      const body = c.refuse.body || '';
      const headers = Object.assign({ 'Content-Type': 'text/plain', 'Content-Length': Buffer.byteLength(body),
        Connection: 'close' }, c.refuse.headers || {});
      let head2 = `HTTP/1.1 ${c.refuse.status} ${http.STATUS_CODES[c.refuse.status] || 'Refused'}\r\n`;
      for (const k of Object.keys(headers)) head2 += `${k}: ${headers[k]}\r\n`;
      socket.end(head2 + '\r\n' + body);
      out({ ev: 'refused', url: req.url, headers: req.headers, status: c.refuse.status });
      return;
    }
    wss.handleUpgrade(req, socket, head, (ws) => accept(ws, req));
  });
  web.on('error', (e) => out({ ev: 'listen-error', message: e.message, code: e.code }));
  web.listen(c.port || 0, c.host || '127.0.0.1', () => out({ ev: 'listening', port: web.address().port }));
}

function accept(ws, req) {
  const id = nextId++;
  conns.set(id, ws);
  out({ ev: 'connection', id, url: req.url, headers: req.headers, protocol: ws.protocol,
    extensions: ws.extensions });
  ws.on('message', (data, isBinary) => {
    out(describe(id, data, isBinary));
    if (opts.echo !== false) ws.send(data, { binary: isBinary, compress: false });
  });
  ws.on('ping', (d) => out({ ev: 'ping', id, data: d.toString() }));
  ws.on('pong', (d) => out({ ev: 'pong', id, data: d.toString() }));
  ws.on('close', (code, reason) => {
    conns.delete(id);
    out({ ev: 'close', id, code, reason: reason.toString() });
  });
  ws.on('error', (e) => out({ ev: 'error', id, message: e.message }));
  if (opts.close_on_open) ws.close(opts.close_on_open.code, opts.close_on_open.reason || '');
}

function each(c, fn) {
  if (c.id !== undefined) { const ws = conns.get(c.id); if (ws) fn(ws); return; }
  for (const ws of conns.values()) fn(ws);
}

// Probes of OUR servers from a TLS stack and a ws client we did not write.
// tls_probe {port, servername, ca, minVersion, maxVersion, ciphers}
//   -> {ev: "tls", ok, protocol, cipher, error}
function tlsProbe(c) {
  const o = { host: '127.0.0.1', port: c.port, servername: c.servername || 'localhost',
    rejectUnauthorized: !!c.ca };
  if (c.ca) o.ca = fs.readFileSync(c.ca);
  for (const k of ['minVersion', 'maxVersion', 'ciphers']) if (c[k]) o[k] = c[k];
  let done = false;
  const finish = (ev) => { if (!done) { done = true; out(ev); } };
  let s;
  try { s = tls.connect(o); } catch (e) { finish({ ev: 'tls', ok: false, error: e.message }); return; }
  s.on('secureConnect', () => {
    finish({ ev: 'tls', ok: true, protocol: s.getProtocol(), cipher: s.getCipher().name,
      authorized: s.authorized });
    s.end();
  });
  s.on('error', (e) => finish({ ev: 'tls', ok: false, error: e.message }));
  s.on('close', () => finish({ ev: 'tls', ok: false, error: 'closed' }));
}

// client {url, ca, protocols, send}: connect, send one text, report the echo, close 1000
function client(c) {
  const o = { perMessageDeflate: false };
  if (c.ca) o.ca = fs.readFileSync(c.ca);
  const ws = new WebSocket(c.url, c.protocols || [], o);
  ws.on('open', () => { out({ ev: 'client-open', protocol: ws.protocol }); ws.send(c.send || 'hello'); });
  ws.on('message', (d) => { out({ ev: 'client-message', data: d.toString() }); ws.close(1000, 'done'); });
  ws.on('close', (code, reason) => out({ ev: 'client-close', code, reason: reason.toString() }));
  ws.on('error', (e) => out({ ev: 'client-error', message: e.message }));
}

const commands = {
  listen,
  tls_probe: tlsProbe,
  client,
  send(c) {
    const p = c.size !== undefined ? pattern(c.size, !!c.binary)
      : c.b64 !== undefined ? Buffer.from(c.b64, 'base64')   // any bytes, even invalid UTF-8 as text
        : Buffer.from(c.data || '', 'utf8');
    each(c, (ws) => ws.send(p, { binary: !!c.binary, compress: false }));
  },
  ping(c) { each(c, (ws) => ws.ping(c.data || '')); },
  pong(c) { each(c, (ws) => ws.pong(c.data || '')); },
  close(c) { each(c, (ws) => (c.code === undefined ? ws.close() : ws.close(c.code, c.reason || ''))); },
  terminate(c) { each(c, (ws) => ws.terminate()); },
  set(c) { Object.assign(opts, c.opts || {}); out({ ev: 'set' }); },
  count() { out({ ev: 'count', n: conns.size }); },
  exit() { process.exit(0); },
};

serve(commands);
