'use strict';
// bench/soak/lib/client.js: one client slot's life (connect, hello, echoes,
// ticks and news checked on arrival, pauses, kills, chaos, bye, close), the
// totals T over all clients, and the problems they saw (violations).

const path = require('path');
const { ROOT, OPTS } = require('./options');
const { rng, uniform, expo, pickSize, binPool, makePayload, tickPadLen } = require('./random');
const srv = require('./server_proc');

const WebSocket = require(path.join(ROOT, 'node_modules', 'ws'));

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
    const ws = new WebSocket(`ws://127.0.0.1:${srv.serverPort}/soak?id=${this.id}${this.news ? '&news=1' : ''}`,
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

module.exports = {
  T, violations, violation, live, Client,
  get open() { return open; },
  get stopping() { return stopping; },
  set stopping(v) { stopping = v; },
};
