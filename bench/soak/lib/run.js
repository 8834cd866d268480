'use strict';
// bench/soak/lib/run.js: the run itself: start the server, ramp the clients
// up and let them churn, sample the server every SAMPLE_S into the table,
// then make every client say bye and wait for the server to drain. abort()
// ends it early (the server died, a signal, a driver error).

const os = require('os');
const path = require('path');
const { ROOT, OPTS, PIN, RUN_S, SAMPLE_S, WARMUP_S, SEED, OUT_FILE } = require('./options');
const { say } = require('./output');
const srv = require('./server_proc');
const { serverStats, procSample, hostBusy } = srv;
const clients = require('./client');
const { T, violation, live, Client } = clients;

const samples = [];
let t0 = 0;
let baseline = null;
let lastCpu = null;
let lastDriverCpu = null;

function fmtMiB(kib) { return (kib / 1024).toFixed(1); }

async function sample(label) {
  if (srv.serverExited) return null;
  const now = Date.now();
  let p;
  try { p = procSample(srv.server.pid); } catch (e) { return null; }
  const openNow = clients.open;
  const st = await serverStats(false);
  const du = process.cpuUsage();
  const dcpu = (du.user + du.system) / 1e6;
  const dt = lastCpu ? (now - lastCpu.t) / 1000 : 0;
  const cpuPct = lastCpu && dt > 0 ? (100 * (p.cpu - lastCpu.cpu)) / dt : 0;
  const dPct = lastDriverCpu && dt > 0 ? (100 * (dcpu - lastDriverCpu)) / dt : 0;
  const host = hostBusy();
  const otherPct = lastCpu && dt > 0 ? Math.max(0, (100 * (host - lastCpu.host)) / dt - cpuPct - dPct) : 0;
  lastCpu = { t: now, cpu: p.cpu, host };
  lastDriverCpu = dcpu;
  const s = {
    label, t: (now - t0) / 1000, rss: p.rss, fds: p.fds, open: openNow, cpuPct, dPct, otherPct, cpuTotal: p.cpu,
    conns: st ? st.connections : -1, msgsIn: st ? st.messages_in : -1, msgsOut: st ? st.messages_out : -1,
    opened: T.opened, luaKib: st ? st.lua_kib : -1, queued: st ? st.queued_bytes : -1,
    heapKib: st && st.heap_kib !== undefined ? st.heap_kib : -1,
    heldKib: st && st.heap_held_kib !== undefined ? st.heap_held_kib : -1,
  };
  samples.push(s);
  return s;
}

function row(s) {
  const c = (v, w) => String(v).padStart(w);
  return `| ${c(s.label, 7)} | ${c(s.t.toFixed(0), 6)} | ${c(fmtMiB(s.rss), 8)} | ${c(s.fds, 5)} | ${c(s.conns, 5)} | ${c(s.open, 5)} | ${c(s.cpuPct.toFixed(1), 5)} | ${c(s.dPct.toFixed(1), 8)} | ${c(s.otherPct.toFixed(0), 7)} | ${c(s.opened, 8)} | ${c(s.msgsIn, 10)} | ${c(s.msgsOut, 10)} | ${c(s.luaKib, 7)} | ${c(fmtMiB(s.queued / 1024), 9)} | ${c(fmtMiB(s.heapKib), 8)} | ${c(fmtMiB(s.heldKib), 8)} |`;
}
const HEADER = [
  '| sample  |    t s | RSS MiB  |   fds | conns |  open | CPU % | drv CPU% | other % | connects |   msgs in  |  msgs out  | Lua KiB | queue MiB | heap MiB | held MiB |',
  '| ------- | -----: | -------: | ----: | ----: | ----: | ----: | -------: | ------: | -------: | ---------: | ---------: | ------: | --------: | -------: | -------: |',
];

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
let aborted = null;
let abortWake = null;
function abort(reason) {
  if (aborted) return;
  aborted = reason;
  if (abortWake) abortWake();
}
function waitOrAbort(ms) {
  return new Promise((resolve) => {
    const t = setTimeout(() => { abortWake = null; resolve(); }, ms);
    abortWake = () => { clearTimeout(t); abortWake = null; resolve(); };
    if (aborted) abortWake();
  });
}

async function main() {
  say(`soak: ${RUN_S} s, ${OPTS.clients} clients, ${OPTS.rate} msg/s each (≤ ${OPTS.inflight} in flight), sizes 0–${OPTS['max-size']} B, ` +
    `slow ${OPTS.slow * 100}%, killed ${OPTS.kill * 100}%, chaos ${OPTS.chaos * 100}% of messages, tick every ${OPTS['tick-ms']} ms, news every ${OPTS['news-ms']} ms, seed ${SEED}`);
  say(`command: bench/soak/run ${process.argv.slice(2).join(' ')}`.trimEnd());
  say(`started ${new Date().toISOString()} on ${os.cpus().length} CPUs, ${os.cpus()[0].model.trim()}; node ${process.version}; report ${path.relative(ROOT, OUT_FILE)}`);
  await srv.startServer(abort);
  if (OPTS['server-prefix']) say(`server command prefix: ${OPTS['server-prefix']}`);
  say(`server pid ${srv.server.pid} on port ${srv.serverPort}${PIN ? ' (taskset -c 0)' : ''}; sampling every ${SAMPLE_S} s, warm-up ${WARMUP_S} s`);
  await sleep(1000);
  const base = await serverStats(true);
  if (!base) throw new Error('GET /stats failed before the run');
  t0 = Date.now();
  baseline = await sample('start');
  baseline.luaKib = base.lua_kib;
  say('');
  HEADER.forEach((l) => say(l));
  say(row(baseline));

  // ramp up at 200 connections per second, then churn for the rest
  const slots = [];
  for (let i = 0; i < OPTS.clients; i++) slots.push(new Client(i));
  let started = 0;
  const ramp = setInterval(() => {
    for (let k = 0; k < 20 && started < slots.length && !clients.stopping; k++) slots[started++].start();
    if (started >= slots.length || clients.stopping) clearInterval(ramp);
  }, 100);

  const end = t0 + RUN_S * 1000;
  let next = t0 + SAMPLE_S * 1000;
  let idx = 0;
  while (!aborted) {
    const due = Math.min(next, end);
    await waitOrAbort(Math.max(0, due - Date.now()));
    if (aborted) break;
    if (Date.now() >= next - 5) {
      idx++;
      const s = await sample(SAMPLE_S % 60 === 0 ? `min ${idx * SAMPLE_S / 60}` : `${idx * SAMPLE_S}s`);
      if (s) say(row(s));
      next += SAMPLE_S * 1000;
    }
    if (Date.now() >= end - 5) break;
  }

  // the end: every open client says bye (slow readers resume first)
  clients.stopping = true;
  clearInterval(ramp);
  const tStop = Date.now();
  for (const c of live) c.bye();
  while (clients.open > 0 && Date.now() - tStop < 75000 && !aborted) await sleep(100);
  const stillOpen = clients.open;
  for (const c of live) {
    if (!aborted) violation(c, 'still open 75 s after the end of the run');
    c.terminate();
  }
  // the server must get back to where it started
  let st = null;
  const tDrain = Date.now();
  while (!aborted && Date.now() - tDrain < 15000) {
    st = await serverStats(false);
    if (st && st.connections === 0 && st.clients === 0 && st.lws_connections === 0) break;
    await sleep(200);
  }
  let final = null;
  if (!aborted) {
    await sleep(500);
    final = await sample('end');
    st = await serverStats(true);
    if (final && st) { final.luaKib = st.lua_kib; say(row(final)); }
  }
  srv.finishing = true;
  return { stillOpen, st, final, drainS: (Date.now() - tStop) / 1000 };
}

module.exports = {
  main, abort, samples, fmtMiB,
  get baseline() { return baseline; },
  get aborted() { return aborted; },
  set aborted(v) { aborted = v; },
};
