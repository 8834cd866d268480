// The Socket.IO Admin UI (@socket.io/admin-ui 0.5's ui/dist, served by
// the Lua server: examples/admin/admin_ui.lua) in Debian's Chromium
// (playwright-core), driven by spec/socketio_admin_spec.lua.
//   node admin_ui_browser.js CONTROL_PORT
// Every request the page makes is recorded; those leaving 127.0.0.1 are
// aborted and reported, as are console errors and page errors.
// {cmd: "open", url, server, username, password} -> {ev: "opened", status}
//   loads the page and logs in with its connection form
// {cmd: "show", hash, want: [texts], timeout} -> {ev: "shown", text}: goes
//   to #hash and waits until the page shows every text in want
// {cmd: "click", selector} -> {ev: "clicked"}
// {cmd: "screenshot", path} -> {ev: "screenshot"}
// {cmd: "state"} -> {ev: "state", requests, offsite, problems, fonts}
'use strict';
const path = require('path');
const nm = path.join(__dirname, '..', '..', 'node_modules');
const { chromium } = require(path.join(nm, 'playwright-core'));

const { out, onCommand, onGone, CHROMIUM, waitFor } = require('./control');

let browser;
let rec;

const commands = {
  async open(c) {
    const context = await browser.newContext({ viewport: { width: 1400, height: 900 } });
    const page = await context.newPage();
    rec = { page, context, requests: [], offsite: [], problems: [] };
    await context.route('**/*', (route) => {
      const url = new URL(route.request().url());
      rec.requests.push(url.href);
      if (url.hostname !== '127.0.0.1') {
        rec.offsite.push(url.href);
        return route.abort();
      }
      return route.continue();
    });
    page.on('websocket', (ws) => {
      const url = new URL(ws.url());
      rec.requests.push(url.href);
      if (url.hostname !== '127.0.0.1') rec.offsite.push(url.href);
    });
    page.on('console', (m) => { if (m.type() === 'error') rec.problems.push('console: ' + m.text()); });
    page.on('pageerror', (e) => rec.problems.push('pageerror: ' + e.message));
    const resp = await page.goto(c.url);
    // the connection form (shown while no server URL is stored)
    await page.getByLabel('Server URL').fill(c.server);
    if (c.username !== undefined) {
      await page.getByLabel('Username').fill(c.username);
      await page.getByLabel('Password').fill(c.password);
    }
    await page.getByRole('button', { name: /connect/i }).click();
    out({ ev: 'opened', status: resp.status() });
  },
  async show(c) {
    const { page } = rec;
    await page.evaluate((h) => { window.location.hash = h; }, c.hash);
    try {
      await waitFor(page, (want) => want.every((t) => document.body.innerText.includes(t)), c.want, c.timeout);
    } catch (e) {
      throw new Error(e.message + '; the page shows: ' + (await page.evaluate(() => document.body.innerText)));
    }
    out({ ev: 'shown', text: await page.evaluate(() => document.body.innerText) });
  },
  // {cmd: "click", selector} -> {ev: "clicked"}: the first element matching
  async click(c) {
    await rec.page.locator(c.selector).first().click();
    out({ ev: 'clicked' });
  },
  async screenshot(c) {
    await rec.page.screenshot({ path: c.path, fullPage: true });
    out({ ev: 'screenshot', path: c.path });
  },
  async state() {
    // the icon font and Roboto, loaded from the Lua server
    const fonts = await rec.page.evaluate(async () => {
      await document.fonts.ready;
      return Array.from(document.fonts).filter((f) => f.status === 'loaded').map((f) => f.family);
    });
    out({ ev: 'state', requests: rec.requests, offsite: rec.offsite, problems: rec.problems, fonts });
  },
  async exit() {
    if (browser) await browser.close();
    process.exit(0);
  },
};

let chain = Promise.resolve();
onCommand((c) => {
  chain = chain.then(() => commands[c.cmd](c)).catch((e) => {
    out({ ev: 'cmd-error', cmd: c.cmd, message: e.message });
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
