'use strict';
// bench/soak/lib/server_proc.js: the server under test as a process:
// starting bench/soak/server.lua (pinned, its stderr to the server log),
// stopping it, its GET /stats, and its RSS, fds and CPU from /proc.

const fs = require('fs');
const path = require('path');
const http = require('http');
const { spawn, execFileSync } = require('child_process');
const { ROOT, OPTS, PIN, SERVER_LOG, PID_FILE } = require('./options');

let server = null;          // child process
let serverPort = 0;
let serverExited = null;    // 'code N' / 'signal S' once it died
let finishing = false;
const serverErrTail = [];

function startServer(abort) {
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

module.exports = {
  startServer, stopServer, serverStats, closesOf, procSample, hostBusy, serverErrTail,
  get server() { return server; },
  get serverPort() { return serverPort; },
  get serverExited() { return serverExited; },
  set finishing(v) { finishing = v; },
};
