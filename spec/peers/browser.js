// A Chromium (Debian's, driven by playwright-core) for spec/browser_spec.lua,
// over a control socket like ws_peer.js:   node browser.js CONTROL_PORT
// The spec sends JSON lines {cmd, id, ...}; each command answers with
// {ev: "result", id, ok, value | error}. Commands run concurrently, so the
// spec can watch two pages at once. Every page records each request URL
// (anything not on 127.0.0.1 is aborted and listed as blocked), console
// errors and warnings, uncaught exceptions, dialogs and CSP violations.
// Never downloads a browser: executablePath is Debian's /usr/bin/chromium.
'use strict';

const path = require('path');
const { chromium } = require(path.join(__dirname, '..', '..', 'node_modules', 'playwright-core'));

const { out, onCommand, onGone, CHROMIUM, waitFor } = require('./control');

let browser = null;
const pages = {};

const isLocal = (u) => /^(https?|wss?):\/\/127\.0\.0\.1(:\d+)?\//.test(u);
// Chromium's own log line for a refused WebSocket: expected while a server is down
const WS_REFUSED = /^WebSocket connection to '.*' failed/;

function get(name) {
  const p = pages[name];
  if (!p) throw new Error('no page ' + name);
  return p;
}

const commands = {
  async launch() {
    browser = await chromium.launch({ ...CHROMIUM, timeout: 30000 });
    return { version: browser.version() };
  },

  async open({ page: name, url, width, height }) {
    const context = await browser.newContext({ viewport: { width: width || 720, height: height || 560 } });
    const rec = { requests: [], blocked: [], errors: [], warnings: [], dialogs: [], refused: [] };
    await context.route('**/*', (route) => {
      const u = route.request().url();
      rec.requests.push(u);
      if (isLocal(u)) return route.continue();
      rec.blocked.push(u);
      return route.abort();
    });
    const page = await context.newPage();
    page.on('websocket', (ws) => {
      rec.requests.push(ws.url());
      if (!isLocal(ws.url())) rec.blocked.push(ws.url());
    });
    page.on('pageerror', (e) => rec.errors.push('pageerror: ' + e.message));
    page.on('console', (m) => {
      const t = m.text();
      if (m.type() === 'error') (WS_REFUSED.test(t) ? rec.refused : rec.errors).push(t);
      else if (m.type() === 'warning') rec.warnings.push(t);
    });
    page.on('dialog', (d) => { rec.dialogs.push(d.type() + ': ' + d.message()); d.dismiss().catch(() => {}); });
    page.on('crash', () => rec.errors.push('page crashed'));
    // CDP-injected, so the page's CSP does not apply to this script itself
    await page.addInitScript(() => {
      window.__csp = [];
      document.addEventListener('securitypolicyviolation',
        (e) => window.__csp.push(e.violatedDirective + ' ' + e.blockedURI));
    });
    pages[name] = { context, page, rec };
    const res = await page.goto(url, { waitUntil: 'load', timeout: 10000 });
    return { status: res.status(), csp: res.headers()['content-security-policy'] || null };
  },

  // waits until #status has data-state = state; returns how long it took
  async state({ page, state, timeout }) {
    const t0 = Date.now();
    await get(page).page.waitForSelector(`#status[data-state="${state}"]`, { timeout: timeout || 10000 });
    return { ms: Date.now() - t0 };
  },

  async click({ page, selector }) {
    await get(page).page.click(selector, { timeout: 5000 });
    return {};
  },

  // fills #name, types #message (key by key when typed) and posts it with
  // Enter or the button; returns what is left in #message
  async post({ page, name, message, via, typed }) {
    const p = get(page).page;
    await p.fill('#name', name, { timeout: 5000 });
    if (typed) {
      await p.fill('#message', '');
      await p.locator('#message').pressSequentially(message, { timeout: 10000 });
    } else {
      await p.fill('#message', message, { timeout: 5000 });
    }
    if (via === 'click') await p.click('#btn_post', { timeout: 5000 });
    else await p.press('#message', 'Enter');
    return { left: await p.inputValue('#message') };
  },

  // waits until ul#chat has an li whose text is line; returns every li's
  // text (newest first) and how many elements other than our spans the list holds
  async chat({ page, line, timeout }) {
    const p = get(page).page;
    if (line !== undefined) {
      await waitFor(p, (l) => [...document.querySelectorAll('#chat > li')].some((li) => li.textContent === l),
        line, timeout || 5000);
    }
    return p.evaluate(() => ({
      lines: [...document.querySelectorAll('#chat > li')].map((li) => li.textContent),
      foreign: document.querySelectorAll('#chat li *:not(span.who):not(span.what)').length,
    }));
  },

  // counts changes of the price table until n changes or ms elapse; a
  // change is one DOM update that alters any price
  async prices({ page, n, ms }) {
    return get(page).page.evaluate(({ n, ms }) => new Promise((resolve) => {
      const body = document.querySelector('tbody');
      const rows = () => [...body.querySelectorAll('tr')].map((tr) => {
        const span = tr.querySelector('span');
        return { id: tr.id, text: span.textContent, cls: span.className };
      });
      const key = () => rows().map((r) => r.text).join(' ');
      let prev = key(), changes = 0;
      const t0 = performance.now();
      const obs = new MutationObserver(() => {
        const k = key();
        if (k !== prev) { prev = k; if (++changes >= n) done(); }
      });
      obs.observe(body, { subtree: true, childList: true, characterData: true });
      const timer = setTimeout(done, ms);
      function done() {
        obs.disconnect();
        clearTimeout(timer);
        resolve({ changes, ms: Math.round(performance.now() - t0), rows: rows() });
      }
    }), { n, ms });
  },

  // waits until the page's own script sets window.__result; returns it
  async result({ page, timeout }) {
    const p = get(page).page;
    await waitFor(p, () => window.__result !== undefined, null, timeout || 10000);
    return p.evaluate(() => window.__result);
  },

  // how the page itself came: the protocol ALPN chose ("http/1.1", "h2")
  async navigation({ page }) {
    return get(page).page.evaluate(() => {
      const nav = performance.getEntriesByType('navigation')[0];
      return { protocol: nav.nextHopProtocol, url: location.href, secure: window.isSecureContext };
    });
  },

  async screenshot({ page, file }) {
    await get(page).page.screenshot({ path: file, fullPage: true, animations: 'disabled' });
    return {};
  },

  async report({ page }) {
    const p = get(page);
    const csp = await p.page.evaluate(() => window.__csp);
    return { ...p.rec, csp };
  },

  async close() {
    if (browser) await browser.close();
    browser = null;
    return {};
  },
};

onCommand((c) => {
  Promise.resolve()
    .then(() => commands[c.cmd](c))
    .then((value) => out({ ev: 'result', id: c.id, ok: true, value }),
      (e) => out({ ev: 'result', id: c.id, ok: false, error: String(e && e.message || e) }));
});
// the spec went away: take the browser down with us
const quit = () => {
  const b = browser;
  browser = null;
  (b ? b.close() : Promise.resolve()).catch(() => {}).finally(() => process.exit(0));
  setTimeout(() => process.exit(0), 3000).unref();
};
onGone(quit);
process.on('SIGTERM', quit);
out({ ev: 'ready', pid: process.pid });
