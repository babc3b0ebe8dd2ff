// Smoke test of the browser stack: the demo shop (second origin) loads with the SDK, the demo
// console (platform origin) lists the demo tenant's live sessions through the partner backend,
// and a visitor's "Get help" shows up there with its join code.

import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { captureSentFrames, newContext, screenshot, waitFor } from './lib/browser.mjs';
import { useStack } from './lib/stack.mjs';

let stack;
let browser;
useStack((s, b) => ((stack = s), (browser = b)));

/** Page errors, console errors (CSP violations show up there) and failed requests, to assert
 * there are none. "Failed to load resource" console lines are left to the response listener,
 * which knows the URL. */
function watchErrors(page) {
  const errors = [];
  page.on('pageerror', (e) => errors.push(`pageerror: ${e.message}`));
  page.on('console', (m) => {
    if (m.type() === 'error' && !/^Failed to load resource/.test(m.text())) errors.push(`console: ${m.text()}`);
  });
  page.on('response', (r) => {
    if (r.status() >= 400) errors.push(`HTTP ${r.status()} ${r.url()}`);
  });
  return errors;
}

/** Saves a screenshot when the test fails (scripts/test.sh keeps them with the run's logs). */
async function onFailure(t, page, fn) {
  try {
    await fn();
  } catch (e) {
    await screenshot(page, { path: `smoke/${t.name.replace(/\W+/g, '_')}.png` }).catch(() => {});
    throw e;
  }
}

describe('demo shop', () => {
  test('every page is served with the SDK tag, the publishable key and proper content types', async () => {
    for (const p of ['/', '/form.html', '/canvas.html', '/spa', '/spa/trips']) {
      const res = await fetch(stack.shopUrl(p));
      assert.equal(res.status, 200, p);
      assert.match(res.headers.get('content-type'), /^text\/html/, p);
      const html = await res.text();
      assert.ok(html.includes(`<script src="${stack.baseUrl}/sdk/v1/cobrowse.js" data-key="${stack.demo.publishableKey}"></script>`), `${p}: SDK tag`);
      assert.ok(!html.includes('{{'), `${p}: no template placeholder left`);
      assert.ok(html.includes('id="help-btn"'), `${p}: Get help button`);
    }
    const css = await fetch(stack.shopUrl('/shop.css'));
    assert.match(css.headers.get('content-type'), /^text\/css/);
    const js = await fetch(stack.shopUrl('/shop.js'));
    assert.match(js.headers.get('content-type'), /^text\/javascript/);
    assert.equal((await fetch(stack.shopUrl('/_header.html'))).status, 404, 'partials are not served');
    assert.equal((await fetch(stack.shopUrl('/../server.mjs'))).status, 404);
  });

  test('the shop page loads the SDK from the platform (window.Cobrowse)', async (t) => {
    const ctx = await newContext(browser);
    const page = await ctx.newPage();
    const errors = watchErrors(page);
    await onFailure(t, page, async () => {
      await page.goto(stack.shopUrl('/'));
      await page.waitForFunction(() => typeof window.Cobrowse === 'object' && typeof window.Cobrowse.start === 'function');
      assert.equal(await page.evaluate(() => window.Cobrowse.state()), 'idle');
      assert.equal(await page.locator('#catalog li').count(), 200);
      assert.deepEqual(errors, []);
    });
    await ctx.close();
  });
});

describe('partner API', () => {
  test('answers the platform origin only, and never shows the secret key', async () => {
    const ok = await fetch(`${stack.demo.origin}/partner/sessions`, { headers: { Origin: stack.baseUrl } });
    assert.equal(ok.status, 200);
    assert.equal(ok.headers.get('access-control-allow-origin'), stack.baseUrl);
    const body = await ok.text();
    assert.doesNotMatch(body, /sk_/);
    const foreign = await fetch(`${stack.demo.origin}/partner/sessions`, { headers: { Origin: 'http://evil.example' } });
    assert.equal(foreign.status, 403);
    assert.equal(foreign.headers.get('access-control-allow-origin'), null);
    const shop = await fetch(`${stack.demo.origin}/partner/sessions/ses_x/join`, { method: 'POST', headers: { Origin: stack.demo.origin } });
    assert.equal(shop.status, 403, 'the shop origin itself may not mint agent tokens');
  });

  test('join returns the viewer embed_url for a live session', async () => {
    const s = await stack.api('POST', '/v1/sessions', { body: { visitor: { name: 'Joiner' } } });
    assert.equal(s.status, 201, JSON.stringify(s.body));
    const j = await stack.partner('POST', `/partner/sessions/${s.body.id}/join`);
    assert.equal(j.status, 200, JSON.stringify(j.body));
    assert.ok(j.body.embed_url.startsWith(`${stack.baseUrl}/viewer/`), j.body.embed_url);
    assert.match(j.body.embed_url, /#token=/, 'the token travels in the fragment');
    const byCode = await stack.partner('GET', `/partner/sessions/by_code/${s.body.join_code}`);
    assert.equal(byCode.status, 200);
    assert.equal(byCode.body.id, s.body.id);
    await stack.api('POST', `/v1/sessions/${s.body.id}/end`);
  });
});

describe('demo console', () => {
  test('lists a session of the demo tenant (created through the API) with its code and visitor', async (t) => {
    const s = await stack.api('POST', '/v1/sessions', { body: { visitor: { name: 'Console Smoke' } } });
    assert.equal(s.status, 201);
    const ctx = await newContext(browser);
    const page = await ctx.newPage();
    const errors = watchErrors(page);
    await onFailure(t, page, async () => {
      await page.goto(stack.consoleUrl);
      const row = page.locator(`li[data-session-id="${s.body.id}"]`);
      await row.waitFor();
      assert.equal((await row.locator('.code').textContent()).replace(/\s/g, ''), s.body.join_code);
      assert.equal(await row.locator('.name').textContent(), 'Console Smoke');
      assert.equal(await page.locator('#partner-state').getAttribute('data-state'), 'ok');
      // Join: the viewer opens in the iframe, on the platform's origin.
      await row.locator('button').click();
      await page.locator('#session-view').waitFor();
      const src = await page.locator('#viewer-frame').getAttribute('src');
      assert.ok(src.startsWith(`${stack.baseUrl}/viewer/`), src);
      assert.deepEqual(errors.filter((e) => !/viewer|relay|WebSocket/i.test(e)), []);
    });
    await stack.api('POST', `/v1/sessions/${s.body.id}/end`);
    await waitFor(async () => (await page.locator(`li[data-session-id="${s.body.id}"]`).count()) === 0, { message: 'the ended session to leave the list' });
    await ctx.close();
  });

  test('a visitor who presses "Get help" appears in the console with the code they see', async (t) => {
    const visitorCtx = await newContext(browser);
    const agentCtx = await newContext(browser);
    const shop = await visitorCtx.newPage();
    const sent = captureSentFrames(shop);
    const desk = await agentCtx.newPage();
    await onFailure(t, shop, async () => {
      await shop.goto(stack.shopUrl('/'));
      await shop.waitForFunction(() => typeof window.Cobrowse === 'object');
      await shop.locator('#help-btn').click();
      const codeEl = shop.locator('#help-code');
      await waitFor(async () => /^\d{6}$/.test((await codeEl.getAttribute('data-code')) ?? ''), { message: 'the join code on the shop page' });
      const code = await codeEl.getAttribute('data-code');
      assert.equal(await shop.evaluate(() => window.Cobrowse.joinCode()), code);

      await desk.goto(stack.consoleUrl);
      const row = desk.locator(`li[data-join-code="${code}"]`);
      await row.waitFor();
      assert.equal(await row.locator('.name').textContent(), 'Sam Rivera');
      // The SDK is connected to the relay (it sends the page only once the visitor lets an
      // agent see it).
      await waitFor(() => sent.sockets.length > 0, { message: "the visitor's relay WebSocket" });
    });
    await shop.evaluate(() => window.Cobrowse.end()).catch(() => {});
    await visitorCtx.close();
    await agentCtx.close();
  });
});
