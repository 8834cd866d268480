// The control socket every Node peer shares with spec/helper.lua's H.node():
// the peer connects back to 127.0.0.1:CONTROL_PORT (argv[2]); commands come
// as JSON lines {cmd, ...}, events go back as JSON lines {ev, ...}.
'use strict';
const net = require('net');

const ctl = net.connect(Number(process.argv[2]), '127.0.0.1');
ctl.setNoDelay(true);

/** out(event): one event line to the spec */
const out = (ev) => ctl.write(JSON.stringify(ev) + '\n');

/** onCommand(fn): fn(command) for every line, in order */
function onCommand(fn) {
  let buf = '';
  ctl.on('data', (d) => {
    buf += d;
    let i;
    while ((i = buf.indexOf('\n')) >= 0) {
      const line = buf.slice(0, i);
      buf = buf.slice(i + 1);
      fn(JSON.parse(line));
    }
  });
}

/** onGone(fn): the spec went away (its end of the socket closed or failed) */
function onGone(fn) {
  ctl.on('close', fn);
  ctl.on('error', fn);
}

/**
 * serve(commands[, opts]): runs commands[c.cmd](c) for each line (a throw
 * becomes {ev: 'cmd-error', cmd, message}; opts.stack sends the stack),
 * exits with the control socket (status 1 on a socket error), then says
 * {ev: 'ready', pid}.
 */
function serve(commands, opts) {
  const stack = opts && opts.stack;
  onCommand((c) => {
    try { commands[c.cmd](c); } catch (e) { out({ ev: 'cmd-error', cmd: c.cmd, message: stack ? e.stack : e.message }); }
  });
  ctl.on('close', () => process.exit(0));
  ctl.on('error', () => process.exit(1));
  out({ ev: 'ready', pid: process.pid });
}

// Debian's Chromium, never a downloaded browser, with the flags every
// browser spec runs it with. A peer started with --ignore-certificate-errors
// after its control port (H.node(script, { "--ignore-certificate-errors" }))
// passes it on: the https specs' throwaway CA is not in Chromium's store.
const CHROMIUM = {
  executablePath: process.env.LWS_CHROMIUM || '/usr/bin/chromium',
  args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking',
    '--disable-component-update', '--no-first-run',
    ...process.argv.slice(3).filter((a) => a === '--ignore-certificate-errors')],
};

// page.waitForFunction evaluates its predicate with eval, which our pages'
// Content-Security-Policy forbids (playwright-core 1.49, the last release
// that runs on Debian 12's Node 18): poll with page.evaluate instead
async function waitFor(page, fn, arg, timeout) {
  timeout = timeout || 10000;
  const deadline = Date.now() + timeout;
  for (;;) {
    if (await page.evaluate(fn, arg)) return;
    if (Date.now() > deadline) throw new Error(`waitFor: timeout ${timeout}ms exceeded`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

module.exports = { out, onCommand, onGone, serve, CHROMIUM, waitFor };
