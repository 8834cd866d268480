// spec/https_spec.lua's page, loaded over https:// from our server: it
// fetches a route and a deferred reply, opens
// new WebSocket("wss://" + location.host + "/ws"), checks that a text and a
// binary message come back exactly as sent, and leaves what it saw in
// window.__result ({ ok, checks, ... } or { error }) for the spec to read.
'use strict';
(async () => {
  const r = { checks: [] };
  const check = (ok, what) => r.checks.push((ok ? 'ok: ' : 'FAILED: ') + what);
  const nav = performance.getEntriesByType('navigation')[0];
  r.protocol = nav.nextHopProtocol;
  r.scheme = location.protocol;
  r.secure = window.isSecureContext;

  const hello = await fetch('/api/hello');
  r.hello = { status: hello.status, body: await hello.json() };
  const later = await fetch('/api/later');
  r.later = { status: later.status, body: await later.text() };
  r.fetchProtocols = performance.getEntriesByType('resource')
    .filter((e) => e.name.includes('/api/')).map((e) => e.nextHopProtocol);

  const ws = new WebSocket('wss://' + location.host + '/ws');
  ws.binaryType = 'arraybuffer';
  r.wsUrl = ws.url;
  const inbox = [];
  let wake = null;
  ws.onmessage = (e) => { inbox.push(e.data); if (wake) wake(); };
  await new Promise((resolve, reject) => {
    ws.onopen = resolve;
    ws.onerror = () => reject(new Error('the WebSocket failed to open'));
  });
  const next = () => new Promise((resolve, reject) => {
    const t = setTimeout(() => reject(new Error('no echo within 5 s')), 5000);
    const take = () => { wake = null; clearTimeout(t); resolve(inbox.shift()); };
    if (inbox.length) take(); else wake = take;
  });

  // text: multi-byte UTF-8, and over 64 KiB (several TLS records)
  const text = 'héllo over wss 👋 ' + 'ünïcode '.repeat(10000);
  ws.send(text);
  const t = await next();
  check(typeof t === 'string', 'the text echo is text');
  check(t === text, 'the text echo is the text sent');

  const bin = new Uint8Array(100000);
  for (let i = 0; i < bin.length; i++) bin[i] = (i * 7 + 3) & 255;
  ws.send(bin);
  const b = await next();
  check(b instanceof ArrayBuffer, 'the binary echo is binary');
  const got = new Uint8Array(b);
  check(got.length === bin.length && got.every((v, i) => v === bin[i]), 'the binary echo is the bytes sent');

  ws.send('');
  check(await next() === '', 'an empty text message echoes');

  const closed = new Promise((resolve) => { ws.onclose = resolve; });
  ws.close(1000, 'page done');
  const c = await closed;
  r.close = { code: c.code, reason: c.reason, wasClean: c.wasClean };
  r.ok = r.checks.every((s) => s.startsWith('ok: '));
  document.getElementById('status').textContent = r.ok ? 'passed' : 'failed';
  window.__result = r;
})().catch((e) => { window.__result = { error: String((e && e.message) || e) }; });
