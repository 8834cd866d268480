// verify_node.js: a second, independent WebSocket client (Node `ws`) used
// to cross-check what bench/bin/loadgen counts. Low rate, 127.0.0.0/8 only.
//
//   node verify_node.js broadcast --port P [--idle-exit S] [--timeout S]
//       one extra receiver on a broadcast server: parses loadgen's payload
//       ("<seq hex16> <send-time hex16> <filler>") and counts deliveries,
//       gaps, duplicates and reordering; exits S seconds after the last one.
//   node verify_node.js echo --port P [--rate R] [--count N] [--size B]
//       its own echo client: N messages at R/s, each payload checked byte
//       for byte, round-trip percentiles from process.hrtime.
//
// Prints one line: VERIFY mode=… key=value …
'use strict';
const path = require('path');
const crypto = require('crypto');
const WebSocket = require(path.join(__dirname, '../node_modules/ws'));

function opt(name, dflt) {
  const i = process.argv.indexOf('--' + name);
  return i > 0 ? process.argv[i + 1] : dflt;
}
const mode = process.argv[2];
const host = opt('host', '127.0.0.1');
const port = Number(opt('port', 0));
if (!/^127\.\d+\.\d+\.\d+$/.test(host) || !port) {
  console.error('usage: verify_node.js broadcast|echo --port P (targets 127.0.0.0/8 only)');
  process.exit(2);
}
const timeout = Number(opt('timeout', 60)) * 1000;
const url = `ws://${host}:${port}/`;

function pct(sorted, q) {
  if (!sorted.length) return 0;
  return sorted[Math.min(sorted.length - 1, Math.ceil(q * sorted.length) - 1)];
}

function finish(fields, ws) {
  const line = 'VERIFY mode=' + mode + ' ' +
    Object.entries(fields).map(([k, v]) => `${k}=${v}`).join(' ');
  console.log(line);
  if (ws && ws.readyState === WebSocket.OPEN) {
    ws.close(1000);
    ws.once('close', () => process.exit(0));
    setTimeout(() => process.exit(0), 2000).unref();
  } else {
    process.exit(0);
  }
}

function broadcast() {
  const idleExit = Number(opt('idle-exit', 3)) * 1000;
  const ws = new WebSocket(url, { perMessageDeflate: false });
  let received = 0, dup = 0, ooo = 0, bad = 0, first = -1, next = -1;
  const seen = new Set();  // low rate: remembering every seq is fine
  let idleTimer = null;

  const done = () => finish({
    received, unique: seen.size, first_seq: first, last_seq: next - 1,
    missing: first < 0 ? 0 : (next - first) - seen.size, dup, ooo, bad,
  }, ws);

  ws.on('open', () => console.error('verify: connected'));
  ws.on('message', (data, isBinary) => {
    received++;
    const s = data.toString('latin1');
    const m = /^([0-9a-f]{16}) ([0-9a-f]{16}) /.exec(s);
    if (isBinary || !m) { bad++; return; }
    const seq = parseInt(m[1], 16);
    if (first < 0) { first = seq; next = seq; }
    if (seen.has(seq)) dup++;
    else {
      if (seq !== next) ooo++;
      seen.add(seq);
    }
    if (seq >= next) next = seq + 1;
    clearTimeout(idleTimer);
    idleTimer = setTimeout(done, idleExit);
  });
  ws.on('error', (e) => { console.error('verify: ' + e.message); process.exit(1); });
  setTimeout(done, timeout).unref();
}

function echo() {
  const rate = Number(opt('rate', 200));
  const count = Number(opt('count', 1000));
  const size = Number(opt('size', 32));
  const ws = new WebSocket(url, { perMessageDeflate: false });
  const pending = [];   // [payload, t0] in send order: echoes come back in order
  const rtts = [];
  let sent = 0, received = 0, mismatches = 0;

  const done = () => {
    rtts.sort((a, b) => a - b);
    finish({
      sent, received, mismatches, lost: sent - received,
      p50_us: pct(rtts, 0.5).toFixed(1), p99_us: pct(rtts, 0.99).toFixed(1),
      max_us: (rtts.length ? rtts[rtts.length - 1] : 0).toFixed(1),
    }, ws);
  };

  ws.on('open', () => {
    const t0 = process.hrtime.bigint();
    const tick = () => {
      // open loop on a fixed schedule, like loadgen's latency mode
      const due = Math.floor(Number(process.hrtime.bigint() - t0) / 1e9 * rate);
      while (sent < count && sent <= due) {
        const body = (sent.toString(16).padStart(8, '0') +
          crypto.randomBytes(size).toString('base64')).slice(0, size);
        pending.push([body, process.hrtime.bigint()]);
        ws.send(body);
        sent++;
      }
      if (sent < count) setTimeout(tick, 1);
    };
    tick();
  });
  ws.on('message', (data) => {
    const now = process.hrtime.bigint();
    const p = pending.shift();
    if (!p) { mismatches++; return; }
    received++;
    if (data.toString() !== p[0]) mismatches++;
    rtts.push(Number(now - p[1]) / 1000);
    if (received === count) done();
  });
  ws.on('error', (e) => { console.error('verify: ' + e.message); process.exit(1); });
  setTimeout(done, timeout).unref();
}

if (mode === 'broadcast') broadcast();
else if (mode === 'echo') echo();
else { console.error('mode must be broadcast or echo'); process.exit(2); }
