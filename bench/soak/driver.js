'use strict';
// The soak run's client side and judge (bench/soak/run starts it): spawns
// bench/soak/server.lua, keeps N Node `ws` clients connecting and leaving,
// checks every message each one gets, samples the server's RSS, fds and CPU
// from /proc, and writes a report. Exit status 0 only when every check held.
//
//   node bench/soak/driver.js [--minutes 30] [--clients 1000] [--out FILE] …
//   (node bench/soak/driver.js --help lists every option)
//
// A client's life: connect (half of them with ?news=1); the server's "#H t n"
// says which tick and news item came last before it joined; then it sends
// random messages (0–256 KiB, mostly small; half binary), each echoed back
// and compared byte for byte, in order; every "#T s" tick and "#N s" news
// item must be the next number. At the end of its life it sends "#bye"; the
// server's "#B t n" must come after every echo and name exactly the last tick
// and news item received, then a 1000 close. That client was healthy.
// Roles: --slow of the clients pause reading for long stretches (healthy all
// the same); --kill of them write part of a frame and destroy the socket;
// --chaos of all messages are "!chaos", which the server's handler raises on
// (the library must close that connection with 1011).
//
// The parts are in bench/soak/lib/: options.js (command line), output.js
// (report lines, failures), random.js (seeded randomness, payloads),
// server_proc.js (the server process, /stats, /proc), client.js (a client's
// life and its checks), run.js (the run and its samples), judge.js (the
// verdict). This file ties them up: the end of the run and its signals.

const fs = require('fs');
const { OUT_FILE } = require('./lib/options');
const { report, say, failures, fail } = require('./lib/output');
const srv = require('./lib/server_proc');
const clients = require('./lib/client');
const run = require('./lib/run');
const { main, abort } = run;
const { judge } = require('./lib/judge');

let done = false;
async function finish(res, interrupted) {
  if (done) return;
  done = true;
  srv.finishing = true;
  clients.stopping = true;
  for (const c of clients.live) { if (c.ws) { c.state = 'failed'; c.ws.terminate(); } }
  await srv.stopServer();
  try { judge(res, interrupted); } catch (e) { fail(`judging failed: ${e.stack}`); }
  say('');
  if (failures.length) {
    say(`FAIL: ${failures.length} check(s) failed:`);
    failures.forEach((f) => say(`  - ${f}`));
  } else {
    say('PASS: every check held');
  }
  say(`finished ${new Date().toISOString()}`);
  fs.writeFileSync(OUT_FILE, report.join('\n') + '\n' + (failures.length ? '0 passed, 1 failed' : '1 passed, 0 failed') + '\n');
  process.exit(failures.length ? 1 : 0);
}

for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP']) {
  process.on(sig, () => { run.aborted = run.aborted || `interrupted by ${sig}`; finish(null, sig); });
}
process.on('uncaughtException', (e) => { fail(`driver error: ${e.stack}`); abort('driver error'); finish(null); });
// the pipe to the server's stdin must not keep us alive or throw on exit
process.on('exit', () => { if (srv.server && !srv.serverExited) try { srv.server.kill('SIGKILL'); } catch (_) { /* gone */ } });

main().then((res) => finish(res), (e) => { fail(`driver error: ${e.message}`); finish(null); });
