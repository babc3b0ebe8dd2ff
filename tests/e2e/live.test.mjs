// The visitor's page, live in the agent's viewer: typing and DOM changes, hover styles, canvas
// pictures (and no resend of an unchanged one), late join, a dropped connection, a full page load
// a single-page-app navigation, and a new snapshot when the relay asks for one.

import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { captureReceivedFrames, waitFor } from './lib/browser.mjs';
import { allow, embedUrl, inViewer, openPair, openViewer, openVisitor, viewerState, waitInViewer } from './lib/cobrowse.mjs';
import { platformCall, useStack } from './lib/stack.mjs';

let stack;
let browser;
useStack((s, b) => ((stack = s), (browser = b)));

describe('live page', () => {
  test('typing and DOM changes in the visitor appear in the viewer', async () => {
    const pair = await openPair(stack, browser, { path: '/form.html' });
    try {
      await pair.visitor.page.locator('#name').pressSequentially('Ann Example', { delay: 10 });
      await pair.waitInViewer((doc) => doc.querySelector('#name')?.value === 'Ann Example', undefined, 'the typed name');
      await pair.visitor.page.locator('#notes').fill('Ring twice');
      await pair.waitInViewer((doc) => doc.querySelector('#notes')?.value === 'Ring twice', undefined, 'the textarea');
      await pair.visitor.page.selectOption('#country', 'Canada');
      await pair.waitInViewer((doc) => doc.querySelector('#country')?.value === 'Canada', undefined, 'the select');
      await pair.visitor.page.evaluate(() => {
        const p = document.createElement('p');
        p.id = 'added-by-test';
        p.textContent = 'A paragraph added after the snapshot';
        document.querySelector('h1').after(p);
        document.querySelector('h1').textContent = 'Checkout (changed)';
      });
      await pair.waitInViewer((doc) => doc.querySelector('#added-by-test')?.textContent === 'A paragraph added after the snapshot');
      await pair.waitInViewer((doc) => doc.querySelector('h1')?.textContent === 'Checkout (changed)');
      const st = await pair.viewerState();
      assert.equal(st.connection, 'live');
      assert.equal(st.visitor, 'connected');
    } finally {
      await pair.close();
    }
  });

  test('hover styles of the visitor show in the viewer', async () => {
    const pair = await openPair(stack, browser, { path: '/' });
    try {
      const card = pair.visitor.page.locator('.card').first();
      // The plain colour as the visitor sees it; the viewer shows it once the shop's stylesheet
      // has come through the proxy (it loads after the page is built, so reading the viewer at
      // once could catch the unstyled card).
      const plain = await card.evaluate((el) => getComputedStyle(el).backgroundColor);
      await pair.waitInViewer((doc, want) => getComputedStyle(doc.querySelector('.card')).backgroundColor === want, plain, 'the plain colour in the viewer');
      await card.hover();
      const hovered = await card.evaluate((el) => getComputedStyle(el).backgroundColor);
      assert.notEqual(hovered, plain, 'the shop has a hover style');
      await pair.waitInViewer((doc, want) => getComputedStyle(doc.querySelector('.card')).backgroundColor === want, hovered, 'the hover colour in the viewer');
      await pair.visitor.page.mouse.move(5, 700);
      await pair.waitInViewer((doc, want) => getComputedStyle(doc.querySelector('.card')).backgroundColor === want, plain, 'the hover to end');
    } finally {
      await pair.close();
    }
  });

  test('a canvas change shows in the viewer, and an unchanged picture is not sent again', async () => {
    // ?still=1: the clock starts paused, so nothing on the page changes until the test says so.
    const pair = await openPair(stack, browser, { path: '/canvas.html?still=1' });
    const page = pair.visitor.page;
    try {
      const pictures = () => page.evaluate(() => window.Cobrowse._stats().canvasPicturesSent);
      const canvasEventsSent = () =>
        pair.visitor.sent.decoded().flatMap((f) => f.events).filter((e) => e.type === 5 && e.data?.tag === 'cb-canvas').length;
      await waitFor(async () => (await pictures()) >= 2, { message: 'both canvases sent once' });
      const pixel = (doc) => {
        const c = doc.querySelector('#static-canvas');
        const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
        let sum = 0;
        for (let i = 0; i < d.length; i += 97) sum += d[i];
        return sum;
      };
      await pair.waitInViewer(pixel, undefined, 'the static canvas drawn in the viewer');
      const before = await pictures();
      const sentBefore = await waitFor(async () => {
        const n = canvasEventsSent();
        return n >= before ? n : 0;
      }, { message: 'the pictures to leave the browser' });
      // Eight sampling periods (250 ms) of an unchanged page: no new picture.
      await page.waitForTimeout(2000);
      assert.equal(await pictures(), before, 'no picture resent while the canvases did not change');
      assert.equal(canvasEventsSent(), sentBefore, 'no cb-canvas event in the frames sent meanwhile');
      // Change the clock canvas: one new picture, shown in the viewer.
      const live = (doc) => getComputedStyle(doc.querySelector('#live-canvas')).backgroundImage;
      const shownBefore = await pair.inViewer(live);
      await page.locator('#canvas-theme').click();
      await waitFor(async () => (await pictures()) > before, { message: 'the changed picture to be sent' });
      await pair.waitInViewer((doc, prev) => getComputedStyle(doc.querySelector('#live-canvas')).backgroundImage !== prev, shownBefore, 'the new picture in the viewer');
    } finally {
      await pair.close();
    }
  });

  test('an agent who joins late sees the whole page at once', async () => {
    const visitor = await openVisitor(browser, stack.shopUrl('/form.html'));
    const { sessionId } = await visitor.page.evaluate(() => window.Cobrowse.start());
    const first = await openViewer(browser, await embedUrl(stack, sessionId));
    await allow(visitor.page);
    await waitInViewer(first.page, (doc) => !!doc.querySelector('#name'));
    // Many changes while only the first agent watches.
    for (let i = 0; i < 30; i++) {
      await visitor.page.evaluate((n) => {
        const li = document.createElement('li');
        li.className = 'late-item';
        li.textContent = `change ${n}`;
        document.querySelector('form').append(li);
      }, i);
    }
    await visitor.page.locator('#name').fill('Late Join');
    await waitInViewer(first.page, (doc) => doc.querySelectorAll('.late-item').length === 30);
    const late = await openViewer(browser, await embedUrl(stack, sessionId));
    try {
      await waitInViewer(late.page, (doc) => doc.querySelectorAll('.late-item').length === 30 && doc.querySelector('#name')?.value === 'Late Join', undefined, 'the whole page in the late viewer');
      const st = await viewerState(late.page);
      assert.equal(st.replayersCreated, 1, 'one page, not a series of partial ones');
    } finally {
      await visitor.page.evaluate(() => window.Cobrowse.end());
      for (const c of [visitor.ctx, first.ctx, late.ctx]) await c.close();
    }
  });

  test("the visitor's connection dropped and restored loses no change", async () => {
    const pair = await openPair(stack, browser, { path: '/form.html' });
    const page = pair.visitor.page;
    try {
      await pair.visitor.ctx.setOffline(true);
      await page.evaluate(() => window.Cobrowse._reconnect());
      await waitFor(async () => (await pair.viewerState()).visitor === 'disconnected', { message: 'the viewer to see the visitor gone' });
      // Changes made while offline wait in the outbox.
      for (let i = 0; i < 20; i++) {
        await page.evaluate((n) => {
          const s = document.createElement('span');
          s.className = 'offline-change';
          s.textContent = String(n);
          document.body.append(s);
        }, i);
      }
      await page.locator('#name').fill('Typed offline');
      await page.waitForTimeout(300);
      await pair.visitor.ctx.setOffline(false);
      await pair.waitInViewer((doc) => doc.querySelectorAll('.offline-change').length === 20 && doc.querySelector('#name')?.value === 'Typed offline', undefined, 'every offline change');
      const texts = await pair.inViewer((doc) => [...doc.querySelectorAll('.offline-change')].map((s) => s.textContent).join(','));
      assert.equal(texts, Array.from({ length: 20 }, (_, i) => i).join(','), 'in order, once each');
      // Sequence numbers of the frames the visitor sent stay contiguous per snapshot run.
      const seqs = [...new Set(pair.visitor.sent.decoded().map((f) => f.seq))].sort((a, b) => a - b);
      for (let i = 1; i < seqs.length; i++) assert.equal(seqs[i], seqs[i - 1] + 1, `no gap between ${seqs[i - 1]} and ${seqs[i]}`);
    } finally {
      await pair.close();
    }
  });

  test('a full page load keeps the session, its join code and the viewer', async () => {
    const pair = await openPair(stack, browser, { path: '/' });
    const page = pair.visitor.page;
    try {
      const firstReplayers = (await pair.viewerState()).replayersCreated;
      await page.goto(stack.shopUrl('/form.html'));
      await page.waitForFunction(() => typeof window.Cobrowse === 'object' && window.Cobrowse.state() !== 'idle');
      assert.equal(await page.evaluate(() => window.Cobrowse.sessionId()), pair.sessionId, 'same session');
      assert.equal(await page.evaluate(() => window.Cobrowse.joinCode()), pair.joinCode, 'same join code');
      await pair.waitInViewer((doc) => !!doc.querySelector('#checkout-form'), undefined, 'the new page in the viewer');
      const st = await pair.viewerState();
      assert.ok(st.replayersCreated > firstReplayers, 'a fresh snapshot for the new page');
      // No consent prompt again on the next page, and no second session for the tenant.
      assert.equal(await page.locator('.cb-ui [data-cb-action="allow"]').count(), 0);
      const list = await stack.api('GET', '/v1/sessions?status=active');
      assert.equal(list.body.data.filter((s) => s.id === pair.sessionId).length, 1);
      // A single-page-app navigation: a new snapshot, the same session.
      await page.goto(stack.shopUrl('/spa'));
      await pair.waitInViewer((doc) => !!doc.querySelector('.spa-nav'), undefined, 'the SPA in the viewer');
      const before = (await pair.viewerState()).replayersCreated;
      await page.locator('.spa-nav a').nth(1).click();
      await waitFor(async () => (await pair.viewerState()).replayersCreated > before, { message: 'a snapshot after pushState' });
      const path = await page.evaluate(() => location.pathname);
      await pair.waitInViewer((doc, p) => doc.querySelector('[data-view]')?.getAttribute('data-view') === p, path, 'the new route in the viewer');
      assert.equal(await page.evaluate(() => window.Cobrowse.sessionId()), pair.sessionId);
    } finally {
      await pair.close();
    }
  });

  test("over the tenant's frame rate the SDK honours slow_down and resends: nothing is lost", async () => {
    const { baseUrl, adminToken } = stack;
    const t = await platformCall(baseUrl, adminToken, 'POST', '/v1/tenants', {
      body: { name: `slow ${Date.now()}`, allowed_origins: [stack.demo.origin], limits: { frames_per_second: 4 } },
    });
    assert.equal(t.status, 201, JSON.stringify(t.body));
    const pk = await platformCall(baseUrl, adminToken, 'POST', '/v1/api_keys', { tenant: t.body.id, body: { type: 'publishable', name: 'site' } });
    const visitor = await openVisitor(browser, stack.shopUrl('/form.html'));
    await visitor.page.evaluate((key) => window.Cobrowse.init({ key, askBeforeViewing: false }), pk.body.secret);
    const { sessionId } = await visitor.page.evaluate(() => window.Cobrowse.start());
    const tok = await platformCall(baseUrl, adminToken, 'POST', `/v1/sessions/${sessionId}/agent_tokens`, { tenant: t.body.id, body: { agent: { id: 'slow-agent' } } });
    const agent = await openViewer(browser, tok.body.embed_url);
    try {
      await waitInViewer(agent.page, (doc) => !!doc.querySelector('#name'));
      // 40 changes 30 ms apart: about 20 frames a second, five times the tenant's limit.
      await visitor.page.evaluate(async () => {
        for (let i = 0; i < 40; i++) {
          const s = document.createElement('span');
          s.className = 'burst';
          s.textContent = String(i);
          document.body.append(s);
          await new Promise((r) => setTimeout(r, 30));
        }
      });
      await waitInViewer(agent.page, (doc) => doc.querySelectorAll('.burst').length === 40, undefined, 'every change despite the rate limit');
      const order = await inViewer(agent.page, (doc) => [...doc.querySelectorAll('.burst')].map((s) => s.textContent).join(','));
      assert.equal(order, Array.from({ length: 40 }, (_, i) => i).join(','));
      const slowDowns = await visitor.page.evaluate(() => window.Cobrowse._stats().slowDowns);
      assert.ok(slowDowns > 0, 'the relay did ask the visitor to slow down');
    } finally {
      await visitor.page.evaluate(() => window.Cobrowse.end()).catch(() => {});
      await visitor.ctx.close();
      await agent.ctx.close();
    }
  });

  test("the agent's connection dropped and restored: the viewer resumes without a reload and misses nothing", async () => {
    const pair = await openPair(stack, browser, { path: '/form.html' });
    try {
      const before = await pair.viewerState();
      await pair.agent.ctx.setOffline(true);
      await pair.agent.page.evaluate(() => window.__testSockets.forEach((ws) => ws.close()));
      await waitFor(async () => (await pair.viewerState()).socket !== 'open', { message: 'the viewer to lose its socket' });
      // Changes while the agent is away.
      for (let i = 0; i < 10; i++) {
        await pair.visitor.page.evaluate((n) => {
          const s = document.createElement('span');
          s.className = 'while-away';
          s.textContent = String(n);
          document.body.append(s);
        }, i);
      }
      await pair.agent.ctx.setOffline(false);
      await pair.waitInViewer((doc) => doc.querySelectorAll('.while-away').length === 10, undefined, 'the changes made while the agent was away');
      const after = await pair.viewerState();
      assert.equal(after.connection, 'live');
      assert.equal(after.replayersCreated, before.replayersCreated, 'resumed, not rebuilt from a new page');
      assert.equal(await pair.agent.page.evaluate(() => performance.getEntriesByType('navigation').length), 1, 'no reload');
    } finally {
      await pair.close();
    }
  });

  test("past the relay's history limit the relay asks for a snapshot, the SDK sends one, and the viewer rebuilds the page", async () => {
    const visitor = await openVisitor(browser, stack.shopUrl('/form.html'));
    const toVisitor = captureReceivedFrames(visitor.page);
    const { sessionId } = await visitor.page.evaluate(() => window.Cobrowse.start());
    const agent = await openViewer(browser, await embedUrl(stack, sessionId));
    try {
      await allow(visitor.page);
      await waitFor(async () => (await viewerState(agent.page)).replayersCreated >= 1, { message: 'the first page in the viewer' });
      const before = await viewerState(agent.page);
      // 40 changes of 400 KB of random base64 each (300 KB a frame once the SDK has compressed
      // it): more than the relay's 8 MiB of history (its default), in frames under its
      // 1 MiB frame limit.
      for (let i = 0; i < 40; i++) {
        await visitor.page.evaluate((n) => {
          let p = document.getElementById('bulk');
          if (!p) {
            p = document.createElement('pre');
            p.id = 'bulk';
            p.style.display = 'none';
            document.body.append(p);
          }
          let text = `${n}:`;
          for (let k = 0; k < 10; k++) text += btoa(String.fromCharCode(...crypto.getRandomValues(new Uint8Array(30_000))));
          p.textContent = text;
          document.title = `bulk ${n}`;
        }, i);
      }
      await waitFor(() => toVisitor.text.some((t) => JSON.parse(t).type === 'snapshot_request'), { message: 'a snapshot_request from the relay' });
      await waitFor(async () => (await viewerState(agent.page)).replayersCreated > before.replayersCreated, { message: 'the viewer to rebuild from the new snapshot' });
      await waitInViewer(agent.page, (doc) => doc.getElementById('bulk')?.textContent.startsWith('39:'), undefined, 'the last change after the new snapshot');
      const st = await viewerState(agent.page);
      assert.equal(st.connection, 'live');
      // Nothing lost after the new snapshot: a change made now still arrives.
      await visitor.page.evaluate(() => document.querySelector('h1').append(' (after)'));
      await waitInViewer(agent.page, (doc) => doc.querySelector('h1')?.textContent.endsWith('(after)'), undefined, 'a change after the rebuild');
    } finally {
      await visitor.page.evaluate(() => window.Cobrowse.end()).catch(() => {});
      await visitor.ctx.close();
      await agent.ctx.close();
    }
  });
});
