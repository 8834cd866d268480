'use strict';
// bench/soak/lib/options.js: the driver's command line, its defaults and
// what follows from them (run length, sampling, warm-up, seed, where the
// report, the server log and the server's pid file go). --help and bad
// arguments exit here, before anything starts.

const fs = require('fs');
const path = require('path');

const ROOT = path.resolve(__dirname, '..', '..', '..');

const OPTS = {
  minutes: 30,          // the measured run (clients keep churning throughout)
  seconds: 0,           // overrides --minutes when set (for trying things out)
  clients: 1000,        // concurrent client slots
  rate: 1,              // messages per second per client (exponential gaps)
  inflight: 8,          // at most this many echoes outstanding per client
  'life-min': 5, 'life-max': 60,        // seconds a normal client stays
  'slow-life-min': 30, 'slow-life-max': 120,
  slow: 0.05, kill: 0.01, chaos: 0.001,
  'pause-min': 5, 'pause-max': 30,      // a slow reader's pauses, seconds
  'tick-ms': 100, 'news-ms': 250,
  'max-size': 262144,
  sample: 0,            // seconds between samples (0: 60, or 10 for runs under 5 min)
  warmup: 0,            // seconds (0: a sixth of the run, at least 30 s)
  // glibc's heap keeps growing slowly with the mix of 256 KiB and small
  // blocks while the bytes in use stay flat (see bench/README.md, soak)
  'rss-tolerance': 0.20, // last RSS sample at most this much above the warm-up one
  'rss-slack-mib': 4,    // … plus this much
  'fd-slack': 32,        // server fds ≤ baseline + open clients + this
  'lua-slack-kib': 1024, // Lua heap at the end ≤ at the start + this
  seed: 0,
  out: '',
  'server-prefix': '',  // words run before the server, e.g. "env LD_PRELOAD=… LWS_BUILD_DIR=…"
                        // (must exec the server: the pid is sampled)
};
let PIN = true;           // taskset -c 0 for the server; --no-pin turns it off

function usage(code) {
  process.stdout.write('usage: node bench/soak/driver.js [--name value …] [--no-pin]\n(--seed fixes the payload pools and the choices, not the timing)\noptions and defaults:\n');
  for (const [k, v] of Object.entries(OPTS)) process.stdout.write(`  --${k} ${v}\n`);
  process.exit(code);
}

for (let i = 2; i < process.argv.length; i++) {
  const a = process.argv[i];
  if (a === '--help' || a === '-h') usage(0);
  if (a === '--no-pin') { PIN = false; continue; }
  const k = a.replace(/^--/, '');
  if (!a.startsWith('--') || !(k in OPTS) || i + 1 >= process.argv.length) {
    process.stderr.write(`driver.js: bad argument '${a}'\n`);
    usage(2);
  }
  const v = process.argv[++i];
  if (typeof OPTS[k] === 'number') {
    const n = Number(v);
    if (!Number.isFinite(n) || n < 0) { process.stderr.write(`driver.js: --${k} needs a number\n`); usage(2); }
    OPTS[k] = n;
  } else {
    OPTS[k] = v;
  }
}

const RUN_S = OPTS.seconds > 0 ? OPTS.seconds : OPTS.minutes * 60;
const SAMPLE_S = OPTS.sample > 0 ? OPTS.sample : (RUN_S < 300 ? 10 : 60);
// a sixth of the run, at least 30 s: heaps and queues grow for the first
// connection lifetimes (up to --life-max) before they settle
const WARMUP_S = OPTS.warmup > 0 ? OPTS.warmup : Math.max(30, SAMPLE_S, Math.round(RUN_S / 6 / SAMPLE_S) * SAMPLE_S);
const SEED = OPTS.seed > 0 ? OPTS.seed >>> 0 : (Date.now() ^ (process.pid << 16)) >>> 0;
const STAMP = new Date().toISOString().replace(/[-:]/g, '').replace(/\.\d+Z$/, 'Z');
const OUT_FILE = OPTS.out || path.join(ROOT, 'bench', 'soak', 'out', `soak-${STAMP}.txt`);
const OUT_DIR = path.dirname(OUT_FILE);
fs.mkdirSync(OUT_DIR, { recursive: true });
const SERVER_LOG = OUT_FILE.replace(/\.txt$/, '') + '.server.log';
// where bench/soak/run looks for a server to kill if this process was killed
const PID_FILE = path.join(ROOT, 'bench', 'soak', 'out', 'server.pid');
fs.mkdirSync(path.dirname(PID_FILE), { recursive: true });

module.exports = {
  ROOT, OPTS, PIN, RUN_S, SAMPLE_S, WARMUP_S, SEED, OUT_FILE, SERVER_LOG, PID_FILE,
};
