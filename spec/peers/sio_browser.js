// The chatroom page in Debian's Chromium (playwright-core, never a
// downloaded browser), driven by a spec over a control socket.
//   node sio_browser.js CONTROL_PORT
// Each page gets its own browser context. Every request a page makes is
// recorded; requests that leave 127.0.0.1 are aborted and reported, as are
// console errors, page errors, dialogs and CSP violations.
'use strict';
const fs = require('fs');
const path = require('path');
const nm = path.join(__dirname, '..', '..', 'node_modules');
const { chromium } = require(path.join(nm, 'playwright-core'));

const { out, onCommand, onGone, CHROMIUM, waitFor } = require('./control');

const V4_BUNDLE = fs.readFileSync(path.join(nm, 'socket.io-client', 'dist', 'socket.io.js'));

let browser;
const pages = {};

async function open(c) {
  const context = await browser.newContext();
  const page = await context.newPage();
  const rec = { page, context, requests: [], offsite: [], problems: [] };
  pages[c.id] = rec;
  await context.route('**/*', (route) => {
    const url = new URL(route.request().url());
    rec.requests.push(url.href);
    if (url.hostname !== '127.0.0.1') {
      rec.offsite.push(url.href);
      return route.abort();
    }
    if (c.v4 && url.pathname === '/socket.io/socket.io.js') {
      // a page built on the 4.x client, against the same server
      return route.fulfill({ status: 200, contentType: 'application/javascript', body: V4_BUNDLE });
    }
    return route.continue();
  });
  // routes do not see websockets: record them here
  page.on('websocket', (ws) => {
    const url = new URL(ws.url());
    rec.requests.push(url.href);
    if (url.hostname !== '127.0.0.1') rec.offsite.push(url.href);
  });
  page.on('console', (m) => {
    if (m.type() === 'error' || m.text().startsWith('CSP:')) {
      const where = m.location() && m.location().url ? ' (' + m.location().url + ')' : '';
      rec.problems.push('console: ' + m.text() + where);
    }
  });
  page.on('pageerror', (e) => rec.problems.push('pageerror: ' + e.message));
  page.on('dialog', (d) => { rec.problems.push('dialog: ' + d.message()); d.dismiss(); });
  await page.addInitScript(() => {
    document.addEventListener('securitypolicyviolation', (e) => {
      console.log('CSP: ' + e.violatedDirective + ' ' + e.blockedURI);
    });
  });
  const resp = await page.goto(c.url);
  out({ ev: 'opened', id: c.id, status: resp.status(), csp: resp.headers()['content-security-policy'] || null });
}

async function state(c) {
  const rec = pages[c.id];
  const s = await rec.page.evaluate(() => {
    const q = (id) => document.getElementById(id);
    return {
      loginHidden: q('loginbox').hidden,
      chatHidden: q('chatbox').hidden,
      showusername: q('showusername').textContent,
      onlinecount: q('onlinecount').textContent,
      sections: Array.from(q('message').querySelectorAll('section')).map((s) => ({
        cls: s.className, text: s.textContent, html: s.innerHTML,
      })),
      injected: q('message').querySelectorAll('img, script, b, iframe').length,
      connected: !!(window.CHAT && CHAT.socket && CHAT.socket.connected),
      transport: window.CHAT && CHAT.socket && CHAT.socket.io.engine ? CHAT.socket.io.engine.transport.name : null,
      protocol: performance.getEntriesByType('navigation')[0].nextHopProtocol,
    };
  });
  out(Object.assign({ ev: 'state', id: c.id, requests: rec.requests, offsite: rec.offsite,
    problems: rec.problems }, s));
}


const commands = {
  open,
  async login(c) {
    const { page } = pages[c.id];
    await page.fill('#username', c.name);
    if (c.click) await page.click('#loginbutton'); else await page.press('#username', 'Enter');
    out({ ev: 'logged-in', id: c.id });
  },
  async say(c) {
    const { page } = pages[c.id];
    await page.fill('#content', c.text);
    if (c.click) await page.click('#mjr_send'); else await page.press('#content', 'Enter');
    out({ ev: 'said', id: c.id });
  },
  // wait until #onlinecount starts with "Online now: N " on page id
  async count(c) {
    const { page } = pages[c.id];
    await waitFor(page, (n) => {
      const e = document.getElementById('onlinecount');
      return !!e && e.textContent.startsWith('Online now: ' + n + ' ');
    }, c.n, c.timeout);
    out({ ev: 'count', id: c.id, n: c.n });
  },
  // wait until there are at least n sections in #message
  async sections(c) {
    const { page } = pages[c.id];
    await waitFor(page, (n) => document.querySelectorAll('#message section').length >= n, c.n, c.timeout);
    out({ ev: 'sections', id: c.id, n: c.n });
  },
  state,
  async close(c) {
    const rec = pages[c.id];
    await rec.context.close();
    delete pages[c.id];
    out({ ev: 'closed', id: c.id });
  },
  async exit() {
    if (browser) await browser.close();
    process.exit(0);
  },
};

let chain = Promise.resolve();
onCommand((c) => {
  // one command at a time, in order
  chain = chain.then(() => commands[c.cmd](c)).catch((e) => {
    out({ ev: 'cmd-error', cmd: c.cmd, id: c.id, message: e.message });
  });
});
const quit = async () => {
  try { if (browser) await browser.close(); } catch (e) { /* going anyway */ }
  process.exit(0);
};
onGone(quit);
process.on('SIGTERM', quit);

(async () => {
  browser = await chromium.launch(CHROMIUM);
  out({ ev: 'ready', pid: process.pid });
})().catch((e) => { out({ ev: 'cmd-error', cmd: 'launch', message: e.message }); process.exit(1); });
