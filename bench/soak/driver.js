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

const fs = require('fs');
const path = require('path');
const http = require('http');
const { spawn, execFileSync } = require('child_process');

const ROOT = path.resolve(__dirname, '..', '..');
const WebSocket = require(path.join(ROOT, 'node_modules', 'ws'));

// ---- options -------------------------------------------------------------

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

// ---- output ----------------------------------------------------------------

const report = [];
function say(line = '') {
  report.push(line);
  process.stdout.write(line + '\n');
}
const failures = [];
function fail(reason) {
  failures.push(reason);
}

// ---- deterministic randomness (mulberry32) ---------------------------------

let rngState = SEED;
function rng() {
  rngState = (rngState + 0x6d2b79f5) >>> 0;
  let t = rngState;
  t = Math.imul(t ^ (t >>> 15), t | 1);
  t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
  return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
}
const uniform = (a, b) => a + (b - a) * rng();
const expo = (mean) => -Math.log(1 - rng()) * mean;
const logUniform = (a, b) => Math.floor(Math.exp(uniform(Math.log(a), Math.log(b))));

// Message sizes: mostly small so that 1,000 clients stay within two cores,
// with the frame-length boundaries and the maximum hit now and then.
const EDGES = [0, 1, 125, 126, 127, 65535, 65536, 65537, 262143, 262144];
function pickSize() {
  const u = rng();
  let n;
  if (u < 0.01) n = EDGES[Math.floor(rng() * EDGES.length)];
  else if (u < 0.70) n = Math.floor(rng() * 513);
  else if (u < 0.90) n = logUniform(512, 8192);
  else if (u < 0.98) n = logUniform(8192, 65536);
  else n = logUniform(65536, 262145);
  return Math.min(n, OPTS['max-size']);
}

// Payloads are slices of two pools with "m<client>.<seq>:" written over the
// start. Text is ASCII without '#' or '!' (the server's control prefixes).
const POOL = 1 << 20;
const binPool = Buffer.alloc(POOL + 262144);
const txtPool = Buffer.alloc(POOL + 262144);
{
  const alphabet = Buffer.from('abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789 .,;:-_+=/()[]{}<>?');
  for (let i = 0; i < binPool.length; i++) {
    binPool[i] = Math.floor(rng() * 256);
    txtPool[i] = alphabet[Math.floor(rng() * alphabet.length)];
  }
}
function makePayload(size, binary, id, seq) {
  const buf = Buffer.allocUnsafe(size);
  const off = Math.floor(rng() * POOL);
  (binary ? binPool : txtPool).copy(buf, 0, off, off + size);
  const tag = `m${id}.${seq}:`;
  if (size >= tag.length) buf.write(tag, 0, 'latin1');
  return buf;
}
const tickPadLen = (seq) => (seq * 37) % 1021;   // as in server.lua

// ---- the server --------------------------------------------------------------

let server = null;          // child process
let serverPort = 0;
let serverExited = null;    // 'code N' / 'signal S' once it died
let finishing = false;
const serverErrTail = [];

function startServer() {
  const args = [path.join(ROOT, 'bin', 'lws-lua'), path.join(ROOT, 'bench', 'soak', 'server.lua'),
    '--port', '0', '--tick-ms', String(OPTS['tick-ms']), '--news-ms', String(OPTS['news-ms']),
    '--exit-on-stdin-eof'];
  const prefix = OPTS['server-prefix'].split(' ').filter(Boolean);
  args.unshift(...prefix);
  let cmd = args.shift();
  if (PIN) { args.unshift('-c', '0', cmd); cmd = 'taskset'; }
  const log = fs.openSync(SERVER_LOG, 'w');
  // stdin stays a pipe we never write to: if this process dies, the server
  // sees EOF and exits (no orphan even after SIGKILL)
  server = spawn(cmd, args, { cwd: ROOT, stdio: ['pipe', 'pipe', 'pipe'] });
  fs.writeFileSync(PID_FILE, `${server.pid}\n`);
  server.stderr.on('data', (d) => {
    fs.writeSync(log, d);
    for (const l of d.toString().split('\n')) if (l) { serverErrTail.push(l); if (serverErrTail.length > 20) serverErrTail.shift(); }
  });
  server.on('exit', (code, sig) => {
    serverExited = sig ? `signal ${sig}` : `code ${code}`;
    try { fs.unlinkSync(PID_FILE); } catch (_) { /* already gone */ }
    if (!finishing) abort(`the server exited during the run (${serverExited})`);
  });
  return new Promise((resolve, reject) => {
    let buf = '';
    const t = setTimeout(() => reject(new Error('the server did not print its port within 10 s')), 10000);
    server.stdout.on('data', (d) => {
      if (serverPort) return;
      buf += d.toString();
      const m = /^listening on ws:\/\/127\.0\.0\.1:(\d+)\//.exec(buf);
      if (m) { serverPort = Number(m[1]); clearTimeout(t); resolve(); }
    });
    server.on('exit', () => { clearTimeout(t); reject(new Error(`the server exited at start (${serverExited})`)); });
  });
}

function stopServer() {
  return new Promise((resolve) => {
    if (!server || serverExited) return resolve();
    // 15 s: a server built with ASan checks for leaks on its way out
    const k = setTimeout(() => { try { server.kill('SIGKILL'); } catch (_) { /* gone */ } }, 15000);
    server.once('exit', () => { clearTimeout(k); resolve(); });
    server.kill('SIGTERM');
  });
}

function serverStats(gc) {
  return new Promise((resolve) => {
    const req = http.get({ host: '127.0.0.1', port: serverPort, path: gc ? '/stats?gc=1' : '/stats', agent: false, timeout: 10000 }, (res) => {
      let body = '';
      res.on('data', (d) => { body += d; });
      res.on('end', () => {
        const s = {};
        const [first, ...rest] = body.split('\n');
        for (const kv of first.trim().split(' ')) {
          const i = kv.indexOf('=');
          if (i > 0) { const v = kv.slice(i + 1); s[kv.slice(0, i)] = /^\d+$/.test(v) ? Number(v) : v; }
        }
        const e = rest.find((l) => l.startsWith('first_unexpected_error:'));
        if (e) s.first_unexpected_error = e;
        resolve(s);
      });
    });
    req.on('timeout', () => req.destroy(new Error('timeout')));
    req.on('error', () => resolve(null));
  });
}
function closesOf(s, code) {
  const m = new RegExp(`(?:^|,)${code}:(\\d+)`).exec(s && s.closes || '');
  return m ? Number(m[1]) : 0;
}

// ---- /proc ---------------------------------------------------------------------

const CLK_TCK = (() => { try { return Number(execFileSync('getconf', ['CLK_TCK']).toString()) || 100; } catch (_) { return 100; } })();
function procSample(pid) {
  const status = fs.readFileSync(`/proc/${pid}/status`, 'utf8');
  const rss = Number(/VmRSS:\s+(\d+)/.exec(status)[1]);
  const fds = fs.readdirSync(`/proc/${pid}/fd`).length;
  const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
  const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  const cpu = (Number(f[11]) + Number(f[12])) / CLK_TCK;   // utime + stime (fields 14, 15)
  return { rss, fds, cpu };
}
// CPU time of the whole machine, in seconds (all cores): to show what
// else was running besides the server and this driver
function hostBusy() {
  const f = fs.readFileSync('/proc/stat', 'utf8').split('\n')[0].trim().split(/\s+/).slice(1, 9).map(Number);
  return (f.reduce((a, b) => a + b, 0) - f[3] - f[4]) / CLK_TCK;
}

// ---- clients -------------------------------------------------------------------

const T = {   // totals
  opened: 0, closed: 0, healthy: 0, killed: 0, chaosClosed: 0, unexpected: 0,
  slowHealthy: 0, pauses: 0,
  echoSent: 0, echoDelivered: 0, bytesSent: 0,
  ticksExpected: 0, ticksDelivered: 0, newsExpected: 0, newsDelivered: 0,
  chaosSent: 0, killPartialHeader: 0, killRst: 0,
  // every client, healthy or not: echoes and broadcasts verified on arrival
  echoesChecked: 0, ticksChecked: 0, newsChecked: 0,
  unhealthySent: 0, unhealthyDelivered: 0,
  maxOpen: 0,
};
const violations = [];    // problems seen by clients: messages wrong, lost, reordered, …
function violation(c, what) {
  T.violationCount = (T.violationCount || 0) + 1;
  if (violations.length < 20) violations.push(`client ${c.id} (${c.role}, ${c.state}): ${what}`);
}

let nextId = 0;
let open = 0;             // ws objects not yet closed (connecting included)
let stopping = false;
const live = new Set();

class Client {
  constructor(slot) { this.slot = slot; }

  start() {
    const r = rng();
    this.id = ++nextId;
    this.role = r < OPTS.kill ? 'killer' : r < OPTS.kill + OPTS.slow ? 'slow' : 'normal';
    this.news = rng() < 0.5;
    this.state = 'connecting';
    this.pending = [];
    this.seq = 0;
    this.sent = 0; this.echoed = 0; this.ticks = 0; this.newsGot = 0;
    this.timers = new Set();
    this.paused = false;
    this.byeOk = false;
    open++; live.add(this);
    if (open > T.maxOpen) T.maxOpen = open;
    const ws = new WebSocket(`ws://127.0.0.1:${serverPort}/soak?id=${this.id}${this.news ? '&news=1' : ''}`,
      { perMessageDeflate: false, handshakeTimeout: 10000 });
    this.ws = ws;
    ws.on('open', () => {
      T.opened++;
      this.state = 'hello';
      this.after(10, () => { violation(this, 'no "#H" hello within 10 s'); this.terminate(); });
    });
    ws.on('message', (data, isBinary) => this.onMessage(data, isBinary));
    ws.on('unexpected-response', (_req, res) => {
      violation(this, `upgrade refused with HTTP ${res.statusCode}`);
      this.state = 'failed';
      ws.terminate();
    });
    ws.on('error', (err) => {
      if (this.state === 'killed') return;
      violation(this, `error: ${err.message}`);
    });
    ws.on('close', (code) => this.onClose(code));
  }

  after(seconds, fn) {
    const t = setTimeout(() => { this.timers.delete(t); fn(); }, seconds * 1000);
    this.timers.add(t);
    return t;
  }

  clearTimers() {
    for (const t of this.timers) clearTimeout(t);
    this.timers.clear();
  }

  onMessage(data, isBinary) {
    if (this.state === 'killed') return;
    if (!isBinary && data.length > 0 && data[0] === 0x23) return this.onControl(data.toString('latin1'));
    T.echoesChecked++;
    const head = this.pending.shift();
    if (!head) return violation(this, `an echo nobody asked for (${data.length} bytes)`);
    if (head.binary !== isBinary || !head.buf.equals(data)) {
      return violation(this, `echo ${head.seq} differs: sent ${head.buf.length} bytes ${head.binary ? 'binary' : 'text'}, got ${data.length} bytes ${isBinary ? 'binary' : 'text'}`);
    }
    this.echoed++;
  }

  onControl(s) {
    const [kind, a, b] = s.split(' ');
    if (kind === '#H') {
      if (this.state !== 'hello') return violation(this, `a second hello: ${s}`);
      this.clearTimers();
      this.tickFirst = Number(a); this.tickNext = this.tickFirst + 1;
      this.newsFirst = Number(b); this.newsNext = this.newsFirst + 1;
      this.state = 'active';
      this.live();
    } else if (kind === '#T') {
      T.ticksChecked++;
      const n = Number(a);
      if (this.tickNext === undefined) return violation(this, `tick ${n} before the hello`);
      if (n !== this.tickNext) violation(this, `tick ${n} where ${this.tickNext} was due (${n < this.tickNext ? 'duplicate or reordered' : `${n - this.tickNext} missing`})`);
      else if (s.length !== `#T ${n} `.length + tickPadLen(n)) violation(this, `tick ${n} is ${s.length} bytes long`);
      this.tickNext = n + 1;
      this.ticks++;
    } else if (kind === '#N') {
      T.newsChecked++;
      const n = Number(a);
      if (!this.news) return violation(this, `news ${n} without a subscription`);
      if (this.newsNext === undefined) return violation(this, `news ${n} before the hello`);
      if (n !== this.newsNext) violation(this, `news ${n} where ${this.newsNext} was due`);
      this.newsNext = n + 1;
      this.newsGot++;
    } else if (kind === '#B') {
      if (this.state !== 'bye') return violation(this, `"${s}" without a bye`);
      const t = Number(a), n = Number(b);
      let ok = true;
      if (this.pending.length) { ok = false; violation(this, `bye answered with ${this.pending.length} echoes missing`); }
      if (this.tickNext !== t + 1) { ok = false; violation(this, `bye says the last tick was ${t}, got up to ${this.tickNext - 1}`); }
      if (this.news && this.newsNext !== n + 1) { ok = false; violation(this, `bye says the last news was ${n}, got up to ${this.newsNext - 1}`); }
      this.byeTick = t; this.byeNews = n;
      this.byeOk = ok;
    } else {
      violation(this, `unknown control message "${s.slice(0, 40)}"`);
    }
  }

  // an open client's schedule: messages, its end, and its role's events
  live() {
    const life = this.role === 'slow' ? uniform(OPTS['slow-life-min'], OPTS['slow-life-max'])
      : uniform(OPTS['life-min'], OPTS['life-max']);
    this.after(life, () => this.bye());
    this.scheduleSend();
    if (this.role === 'slow') this.after(uniform(1, 5), () => this.pause());
    if (this.role === 'killer') this.after(uniform(1, Math.min(30, life)), () => this.kill());
    if (stopping) this.bye();
  }

  scheduleSend() {
    this.sendTimer = this.after(expo(1 / OPTS.rate), () => {
      if (this.state !== 'active') return;
      if (this.pending.length < OPTS.inflight) {
        if (this.role !== 'killer' && rng() < OPTS.chaos) return this.sendChaos();
        this.sendOne();
      }
      this.scheduleSend();
    });
  }

  sendOne() {
    const size = pickSize();
    const binary = rng() < 0.5;
    const seq = ++this.seq;
    const buf = makePayload(size, binary, this.id, seq);
    this.pending.push({ buf, binary, seq });
    this.ws.send(buf, { binary });
    this.sent++;
    T.bytesSent += size;
  }

  pause() {
    if (this.state !== 'active') return;
    this.ws.pause();
    this.paused = true;
    T.pauses++;
    this.after(uniform(OPTS['pause-min'], OPTS['pause-max']), () => {
      if (this.paused) { this.ws.resume(); this.paused = false; }
      if (this.state === 'active') this.after(uniform(1, 5), () => this.pause());
    });
  }

  unpause() {
    if (this.paused) { this.ws.resume(); this.paused = false; }
  }

  bye() {
    if (this.state !== 'active') return;
    this.clearTimers();
    this.unpause();
    this.state = 'bye';
    this.ws.send('#bye');
    this.after(60, () => { violation(this, 'bye not answered with "#B" and a close within 60 s'); this.terminate(); });
  }

  sendChaos() {
    this.clearTimers();
    this.unpause();
    this.state = 'chaos';
    this.ws.send(`!chaos ${this.id}`);
    T.chaosSent++;
    this.after(20, () => { violation(this, 'no 1011 close within 20 s of "!chaos"'); this.terminate(); });
  }

  // part of a frame (sometimes only part of its header), then the socket goes
  kill() {
    if (this.state !== 'active') return;
    this.clearTimers();
    this.state = 'killed';
    T.killed++;
    const len = 1000 + Math.floor(rng() * 261144);
    const head = Buffer.alloc(14);
    head[0] = 0x82;                       // FIN, binary
    let hl;
    if (len < 65536) { head[1] = 0x80 | 126; head.writeUInt16BE(len, 2); hl = 4; }
    else { head[1] = 0x80 | 127; head.writeUInt32BE(0, 2); head.writeUInt32BE(len, 6); hl = 10; }
    for (let i = 0; i < 4; i++) head[hl + i] = Math.floor(rng() * 256);
    hl += 4;
    let frame;
    if (rng() < 0.2) { frame = head.subarray(0, 1 + Math.floor(rng() * (hl - 1))); T.killPartialHeader++; }
    else frame = Buffer.concat([head.subarray(0, hl), binPool.subarray(0, Math.floor(len * uniform(0.05, 0.95)))]);
    const sock = this.ws._socket;
    const rst = rng() < 0.5;
    if (rst) T.killRst++;
    sock.write(frame, () => (rst ? sock.resetAndDestroy() : sock.destroy()));
  }

  terminate() {
    this.state = this.state === 'killed' ? 'killed' : 'failed';
    this.ws.terminate();
  }

  onClose(code) {
    this.clearTimers();
    open--; live.delete(this);
    T.closed++;
    let healthy = false;
    switch (this.state) {
      case 'bye':
        if (code === 1000 && this.byeOk) healthy = true;
        else if (code !== 1000) violation(this, `closed with ${code} after its bye`);
        else if (this.byeTick === undefined) violation(this, 'closed with 1000 but no "#B" came');
        break;
      case 'chaos':
        if (code === 1011) T.chaosClosed++;
        else violation(this, `closed with ${code} after "!chaos", not 1011`);
        break;
      case 'killed':
        break;
      case 'failed':
        break;   // already reported
      default:
        violation(this, `closed with ${code} unexpectedly`);
    }
    if (healthy) {
      T.healthy++;
      if (this.role === 'slow') T.slowHealthy++;
      T.echoSent += this.sent; T.echoDelivered += this.echoed;
      T.ticksExpected += this.byeTick - this.tickFirst; T.ticksDelivered += this.ticks;
      if (this.news) { T.newsExpected += this.byeNews - this.newsFirst; T.newsDelivered += this.newsGot; }
    } else {
      if (this.state !== 'killed' && this.state !== 'chaos') T.unexpected++;
      T.unhealthySent += this.sent; T.unhealthyDelivered += this.echoed;
    }
    this.ws = null;
    if (!stopping) setTimeout(() => { if (!stopping) this.start(); }, uniform(0, 500));
  }
}

// ---- the run -------------------------------------------------------------------

const samples = [];
let t0 = 0;
let baseline = null;
let lastCpu = null;
let lastDriverCpu = null;

function fmtMiB(kib) { return (kib / 1024).toFixed(1); }

async function sample(label) {
  if (serverExited) return null;
  const now = Date.now();
  let p;
  try { p = procSample(server.pid); } catch (e) { return null; }
  const openNow = open;
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
  say(`started ${new Date().toISOString()} on ${require('os').cpus().length} CPUs, ${require('os').cpus()[0].model.trim()}; node ${process.version}; report ${path.relative(ROOT, OUT_FILE)}`);
  await startServer();
  if (OPTS['server-prefix']) say(`server command prefix: ${OPTS['server-prefix']}`);
  say(`server pid ${server.pid} on port ${serverPort}${PIN ? ' (taskset -c 0)' : ''}; sampling every ${SAMPLE_S} s, warm-up ${WARMUP_S} s`);
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
    for (let k = 0; k < 20 && started < slots.length && !stopping; k++) slots[started++].start();
    if (started >= slots.length || stopping) clearInterval(ramp);
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
  stopping = true;
  clearInterval(ramp);
  const tStop = Date.now();
  for (const c of live) c.bye();
  while (open > 0 && Date.now() - tStop < 75000 && !aborted) await sleep(100);
  const stillOpen = open;
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
  finishing = true;
  return { stillOpen, st, final, drainS: (Date.now() - tStop) / 1000 };
}

function judge(res, interrupted) {
  const { st, final } = res || {};
  say('');
  say('## totals');
  say(`connections opened ${T.opened}, closed ${T.closed}, at most ${T.maxOpen} open at once`);
  say(`healthy clients ${T.healthy} (slow readers among them ${T.slowHealthy}, ${T.pauses} pauses); killed ${T.killed} (${T.killRst} by RST, ${T.killPartialHeader} inside the header); closed by chaos ${T.chaosClosed} of ${T.chaosSent}; other ${T.unexpected}`);
  say(`healthy echoes: sent ${T.echoSent}, delivered intact ${T.echoDelivered} (${(T.bytesSent / 1048576).toFixed(0)} MiB sent by all clients)`);
  say(`healthy ticks:  expected ${T.ticksExpected}, delivered in order ${T.ticksDelivered}`);
  say(`healthy news:   expected ${T.newsExpected}, delivered in order ${T.newsDelivered}`);
  say(`unhealthy clients: sent ${T.unhealthySent}, echoes received before the end ${T.unhealthyDelivered} (not required)`);
  say(`checked on arrival (every client): ${T.echoesChecked} echoes, ${T.ticksChecked} ticks, ${T.newsChecked} news items`);
  if (st) {
    say(`server: handshakes ${st.handshakes}, messages in ${st.messages_in}, out ${st.messages_out}, closes ${st.closes}, callback errors ${st.callback_errors} (unexpected ${st.unexpected_errors}), dropped ${st.dropped}, refused ticks ${st.tick_refused}, news ${st.news_refused}, echoes ${st.echo_refused}; ticks sent ${st.tick}, news ${st.news}`);
  }
  const cpuSamples = samples.filter((s) => s.label !== 'start');
  if (final && baseline) {
    const run = final.cpuTotal - baseline.cpuTotal;
    const secs = final.t - baseline.t;
    say(`server CPU: ${run.toFixed(1)} s over ${secs.toFixed(0)} s = ${(100 * run / secs).toFixed(1)}% of one core on average; peak sample ${Math.max(...cpuSamples.map((s) => s.cpuPct)).toFixed(1)}%`);
  }

  // ---- the checks ----
  if (interrupted || aborted) {
    fail(interrupted ? `interrupted by ${interrupted}: no verdict on a partial run` : `run aborted: ${aborted}`);
    return printProblems();
  }
  const checks = [];
  const check = (ok, what) => { checks.push(`${ok ? 'ok  ' : 'FAIL'} ${what}`); if (!ok) fail(what); };
  check(T.violationCount === undefined, `no client saw a wrong, missing, duplicated or reordered message or an unexpected close (${T.violationCount || 0})`);
  check(T.echoSent === T.echoDelivered, `healthy echoes: sent ${T.echoSent} = delivered ${T.echoDelivered}`);
  check(T.ticksExpected === T.ticksDelivered, `healthy ticks: expected ${T.ticksExpected} = delivered ${T.ticksDelivered}`);
  check(T.newsExpected === T.newsDelivered, `healthy news: expected ${T.newsExpected} = delivered ${T.newsDelivered}`);
  check(T.healthy > 0 && T.echoSent > 0 && T.ticksExpected > 0, 'the run did some work');
  check(T.chaosClosed === T.chaosSent, `every "!chaos" closed its connection with 1011 (${T.chaosClosed} of ${T.chaosSent})`);
  check(res && res.stillOpen === 0, `every client closed within 75 s of the end (${res ? res.stillOpen : '?'} left)`);
  if (st) {
    check(st.connections === 0 && st.clients === 0 && st.lws_connections === 0 && st.subscribers === 0 && st.queued_bytes === 0,
      `server back to empty: connections ${st.connections}, clients ${st.clients}, lws connections ${st.lws_connections}, news subscribers ${st.subscribers}, queued bytes ${st.queued_bytes}`);
    check(st.handshakes === T.opened, `server handshakes ${st.handshakes} = client opens ${T.opened}`);
    check(closesOf(st, 1000) === T.healthy, `server 1000 closes ${closesOf(st, 1000)} = healthy clients ${T.healthy}`);
    check(closesOf(st, 1011) === T.chaosSent && st.callback_errors === T.chaosSent && st.unexpected_errors === 0,
      `server 1011 closes ${closesOf(st, 1011)} = callback errors ${st.callback_errors} = "!chaos" sent ${T.chaosSent}, none unexpected${st.first_unexpected_error ? ` (${st.first_unexpected_error.slice(0, 300)})` : ''}`);
    check(closesOf(st, 1006) === T.killed, `server 1006 closes ${closesOf(st, 1006)} = killed clients ${T.killed}`);
    check(st.dropped === 0 && st.tick_refused === 0 && st.news_refused === 0 && st.echo_refused === 0,
      `nothing refused or dropped by send queues (dropped ${st.dropped}, ticks ${st.tick_refused}, news ${st.news_refused}, echoes ${st.echo_refused})`);
  } else {
    check(false, 'GET /stats answered at the end');
  }
  check(serverExited === 'code 0', `the server exited with status 0 on SIGTERM (${serverExited || 'still running'})`);

  // flat memory and descriptors
  const warm = samples.filter((s) => s.label !== 'start' && s.label !== 'end' && s.t >= WARMUP_S - 1)[0];
  const mid = samples.filter((s) => s.label !== 'start' && s.label !== 'end');
  const last = mid[mid.length - 1];
  if (warm && last && warm !== last) {
    const limit = warm.rss * (1 + OPTS['rss-tolerance']) + OPTS['rss-slack-mib'] * 1024;
    check(last.rss <= limit, `RSS flat after warm-up: last sample ${fmtMiB(last.rss)} MiB ≤ ${fmtMiB(limit)} MiB (warm-up sample at ${warm.t.toFixed(0)} s: ${fmtMiB(warm.rss)} MiB + ${OPTS['rss-tolerance'] * 100}% + ${OPTS['rss-slack-mib']} MiB)`);
  } else {
    check(false, `enough samples to judge RSS after a ${WARMUP_S} s warm-up (${mid.length} samples)`);
  }
  if (baseline) {
    const worst = mid.reduce((w, s) => Math.max(w, s.fds - baseline.fds - s.open), -Infinity);
    check(mid.length > 0 && worst <= OPTS['fd-slack'], `fds bounded: every sample ≤ ${baseline.fds} (at start) + open clients + ${OPTS['fd-slack']} (worst excess ${worst})`);
    if (final) {
      check(final.fds === baseline.fds, `fds back to the start's count after the run: ${final.fds} = ${baseline.fds}`);
      check(final.luaKib <= baseline.luaKib + OPTS['lua-slack-kib'], `Lua heap after a full GC at the end ${final.luaKib} KiB ≤ ${baseline.luaKib} KiB at the start + ${OPTS['lua-slack-kib']} KiB`);
    } else {
      check(false, 'a final sample of the server');
    }
  }
  say('');
  say('## checks');
  checks.forEach((l) => say(l));
  printProblems();
}

function printProblems() {
  if (violations.length) {
    say('');
    say(`## client problems (first ${violations.length} of ${T.violationCount})`);
    violations.forEach((v) => say(v));
  }
  if (serverErrTail.length && failures.length) {
    say('');
    say(`## last lines of the server's stderr (${path.relative(ROOT, SERVER_LOG)})`);
    serverErrTail.forEach((l) => say(l));
  }
}

let done = false;
async function finish(res, interrupted) {
  if (done) return;
  done = true;
  finishing = true;
  stopping = true;
  for (const c of live) { if (c.ws) { c.state = 'failed'; c.ws.terminate(); } }
  await stopServer();
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
  process.on(sig, () => { aborted = aborted || `interrupted by ${sig}`; finish(null, sig); });
}
process.on('uncaughtException', (e) => { fail(`driver error: ${e.stack}`); abort('driver error'); finish(null); });
// the pipe to the server's stdin must not keep us alive or throw on exit
process.on('exit', () => { if (server && !serverExited) try { server.kill('SIGKILL'); } catch (_) { /* gone */ } });

main().then((res) => finish(res), (e) => { fail(`driver error: ${e.message}`); finish(null); });
