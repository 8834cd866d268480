// Chromium (spec/peers/control.js's CHROMIUM) opening one page and
// reporting what its `window.result` promise resolves to, for
// spec/http2_spec.lua: {cmd:'open', url} -> {ev:'result', value} or
// {ev:'error', message}.
'use strict';
const { chromium } = require('playwright-core');
const { out, serve, CHROMIUM } = require('./control');

let browser;
serve({
  open(c) {
    (async () => {
      browser = browser || await chromium.launch(CHROMIUM);
      const ctx = await browser.newContext({ ignoreHTTPSErrors: true });
      const page = await ctx.newPage();
      await page.goto(c.url);
      const value = await page.evaluate(() => window.result);
      out({ ev: 'result', value });
      await ctx.close();
    })().catch((e) => out({ ev: 'error', message: e.message }));
  },
});
process.on('exit', () => { if (browser) browser.close(); });
