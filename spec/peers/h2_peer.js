// An HTTP/2 client for spec/http2_spec.lua: Node's http2 module (nghttp2
// inside, not our code) over TLS, one session per `connect`, commands over
// spec/peers/control.js's socket.
//   {cmd:'connect', url, ca}                  -> {ev:'connected', alpn, connect_protocol}
//   {cmd:'request', id, path, method, headers, body_b64, end_without_body}
//                                             -> {ev:'response', id, status, headers, b64}
//                                                or {ev:'stream-error', id, code, message}
//   {cmd:'many', id, n, path}                 -> {ev:'many', id, statuses, bodies}
//   {cmd:'ws', id, path, answer_close}  extended CONNECT (RFC 8441)
//                          -> {ev:'ws-response', id, status, headers}, {ev:'ws-data', id, b64}...,
//                             {ev:'ws-end', id, b64} / {ev:'stream-error', ...}, {ev:'ws-closed', id, rst}
//   {cmd:'cancel', id}  RST_STREAM (CANCEL) of request id
//   {cmd:'destroy'}     GOAWAY, then the connection dropped -> {ev:'destroyed'}
//   {cmd:'close'}                             -> {ev:'closed'}
'use strict';
const http2 = require('http2');
const fs = require('fs');
const { out, serve } = require('./control');

let session;
const streams = {};

const commands = {
  connect(c) {
    session = http2.connect(c.url, { ca: fs.readFileSync(c.ca), servername: 'localhost' });
    session.on('error', (e) => out({ ev: 'session-error', message: e.message, code: e.code }));
    session.on('goaway', (code) => out({ ev: 'goaway', code }));
    session.on('remoteSettings', (s) => out({ ev: 'settings', connect_protocol: !!s.enableConnectProtocol,
      max_streams: s.maxConcurrentStreams }));
    session.on('connect', (s, socket) => out({ ev: 'connected', alpn: socket.alpnProtocol }));
  },
  request(c) {
    const h = Object.assign({ ':method': c.method || 'GET', ':path': c.path }, c.headers || {});
    const body = c.body_b64 ? Buffer.from(c.body_b64, 'base64') : null;
    const req = session.request(h, { endStream: !body && !c.end_without_body });
    streams[c.id] = req;
    const chunks = [];
    let head;
    req.on('response', (hd) => { head = hd; });
    req.on('data', (d) => chunks.push(d));
    req.on('end', () => {
      const hd = {};
      for (const k of Object.keys(head || {})) if (k[0] !== ':') hd[k] = String(head[k]);
      out({ ev: 'response', id: c.id, status: head && head[':status'], headers: hd,
        b64: Buffer.concat(chunks).toString('base64') });
    });
    req.on('error', (e) => out({ ev: 'stream-error', id: c.id, code: e.code, message: e.message,
      status: head && head[':status'] }));
    if (body) req.end(body);
    else if (c.end_without_body) req.end();
  },
  many(c) {
    const statuses = [];
    const bodies = [];
    let left = c.n;
    for (let i = 0; i < c.n; i++) {
      const req = session.request({ ':path': c.path + (c.path.includes('?') ? '&' : '?') + 'i=' + i });
      const chunks = [];
      req.on('response', (hd) => { statuses[i] = hd[':status']; });
      req.on('data', (d) => chunks.push(d));
      const done = () => {
        bodies[i] = Buffer.concat(chunks).toString();
        if (--left === 0) out({ ev: 'many', id: c.id, statuses, bodies });
      };
      req.on('end', done);
      req.on('error', (e) => { statuses[i] = 'error ' + e.code; done(); });
    }
  },
  ws(c) {
    const req = session.request({ ':method': 'CONNECT', ':protocol': 'websocket', ':path': c.path,
      ':scheme': 'https', 'sec-websocket-version': '13', origin: 'https://127.0.0.1' }, { endStream: false });
    const chunks = [];
    req.on('response', (hd) => {
      const h = {};
      for (const k of Object.keys(hd)) if (k[0] !== ':') h[k] = String(hd[k]);
      out({ ev: 'ws-response', id: c.id, status: hd[':status'], headers: h });
    });
    req.on('data', (d) => {
      chunks.push(d);
      out({ ev: 'ws-data', id: c.id, b64: d.toString('base64') });
      // a Close from the server (one unmasked frame, as lws sends it):
      // answered as a WebSocket client does, masked, with its code
      if (c.answer_close && d[0] === 0x88 && d.length >= 4) {
        const key = Buffer.from([1, 2, 3, 4]);
        const body = Buffer.from([d[2] ^ key[0], d[3] ^ key[1]]);
        req.end(Buffer.concat([Buffer.from([0x88, 0x82]), key, body]));
      }
    });
    req.on('end', () => out({ ev: 'ws-end', id: c.id, b64: Buffer.concat(chunks).toString('base64') }));
    req.on('error', (e) => out({ ev: 'stream-error', id: c.id, code: e.code, message: e.message }));
    req.on('close', () => out({ ev: 'ws-closed', id: c.id, rst: req.rstCode }));
  },
  // RST_STREAM CANCEL of one request
  cancel(c) { streams[c.id].close(http2.constants.NGHTTP2_CANCEL); },
  // GOAWAY, then the TCP connection closed under the streams still open
  destroy() {
    session.goaway(http2.constants.NGHTTP2_NO_ERROR);
    setTimeout(() => { session.destroy(); out({ ev: 'destroyed' }); }, 20);
  },
  close() {
    session.close(() => out({ ev: 'closed' }));
  },
};

serve(commands);
