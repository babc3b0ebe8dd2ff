// Control with consent: an agent's click reaches the page's handler only after the visitor
// allowed it, never before (neither through the viewer nor by a hand-made relay message); typing
// goes into the field the agent focused, never into a masked one; the visitor takes control back.

import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import WebSocket from 'ws';
import { waitFor } from './lib/browser.mjs';
import { embedUrl, openPair, openViewer, openVisitor, reveal, viewerPointOf, viewerState, waitInViewer } from './lib/cobrowse.mjs';
import { platformCall, useStack } from './lib/stack.mjs';

let stack;
let browser;
useStack((s, b) => ((stack = s), (browser = b)));

const orders = (page) => page.evaluate(() => Number(document.documentElement.getAttribute('data-orders') ?? 0));

/** A second agent speaking the relay protocol directly (what a modified viewer could send). */
async function rawAgent(sessionId) {
  const tok = await platformCall(stack.baseUrl, stack.adminToken, 'POST', `/v1/sessions/${sessionId}/agent_tokens`, {
    tenant: stack.demo.tenantId,
    body: { agent: { id: 'raw-agent', name: 'Raw' } },
  });
  assert.equal(tok.status, 201);
  const session = await platformCall(stack.baseUrl, stack.adminToken, 'GET', `/v1/sessions/${sessionId}`, { tenant: stack.demo.tenantId });
  const url = new URL(session.body.relay_url);
  url.searchParams.set('access_token', tok.body.token);
  const ws = new WebSocket(url, 'cobrowse.v1');
  const texts = [];
  ws.on('message', (d, binary) => !binary && texts.push(JSON.parse(d.toString())));
  await new Promise((resolve, reject) => {
    ws.once('open', resolve);
    ws.once('error', reject);
  });
  return { ws, texts, close: () => ws.close() };
}

describe('remote control', () => {
  test("an agent's click runs the page's handler only after consent, never before", async () => {
    const pair = await openPair(stack, browser, { path: '/form.html' });
    const visitor = pair.visitor.page;
    const viewer = pair.agent.page;
    const raw = await rawAgent(pair.sessionId);
    try {
      await pair.waitInViewer((doc) => !!doc.querySelector('#place-order'));
      await reveal(pair, '#place-order');
      // 1. Before consent: a click in the viewer, and a hand-made click message, do nothing.
      let p = await viewerPointOf(viewer, '#place-order');
      await viewer.mouse.click(p.x, p.y);
      const box = await visitor.locator('#place-order').boundingBox();
      raw.ws.send(JSON.stringify({ type: 'click', x: box.x + box.width / 2, y: box.y + box.height / 2, ref: 'r-1' }));
      await waitFor(() => raw.texts.some((m) => m.type === 'refused' && m.ref === 'r-1'), { message: 'the relay to refuse the raw click' });
      assert.equal(raw.texts.find((m) => m.ref === 'r-1').reason, 'no_consent');
      await visitor.waitForTimeout(500);
      assert.equal(await orders(visitor), 0, 'no click reached the page before consent');

      // 2. The agent asks; the visitor allows; the same click now runs the handler.
      await viewer.locator('button.control').click();
      const prompt = visitor.locator('.cb-ui [role="dialog"]');
      await prompt.waitFor();
      assert.match(await prompt.innerText(), /control/i);
      assert.equal(await orders(visitor), 0, 'still nothing while the visitor decides');
      await visitor.locator('.cb-ui [data-cb-action="allow"]').click();
      await waitFor(async () => (await pair.viewerState()).control === 'granted', { message: 'the viewer to learn control was granted' });
      p = await viewerPointOf(viewer, '#place-order');
      await viewer.mouse.click(p.x, p.y);
      await waitFor(async () => (await orders(visitor)) === 1, { message: "the page's submit handler to run once" });
      assert.match(await visitor.locator('#order-result').innerText(), /Order placed/);
      // The raw agent was not granted anything: its clicks stay refused.
      raw.ws.send(JSON.stringify({ type: 'click', x: box.x + 5, y: box.y + 5, ref: 'r-2' }));
      await waitFor(() => raw.texts.some((m) => m.ref === 'r-2'), { message: 'the second refusal' });
      assert.equal(await orders(visitor), 1);
    } finally {
      raw.close();
      await pair.close();
    }
  });

  test('typing goes into the field the agent focused, never into a masked one; the visitor takes control back', async () => {
    const pair = await openPair(stack, browser, { path: '/form.html' });
    const visitor = pair.visitor.page;
    const viewer = pair.agent.page;
    try {
      await viewer.locator('button.control').click();
      await visitor.locator('.cb-ui [data-cb-action="allow"]').click();
      await waitFor(async () => (await pair.viewerState()).control === 'granted', { message: 'control granted' });
      await reveal(pair, '#city');
      let p = await viewerPointOf(viewer, '#city');
      await viewer.mouse.click(p.x, p.y);
      await waitFor(() => visitor.evaluate(() => document.activeElement?.id === 'city'), { message: 'the visitor field focused by the agent' });
      await viewer.keyboard.type('Denver', { delay: 20 });
      await waitFor(async () => (await visitor.inputValue('#city')) === 'Denver', { message: 'the typed text in the visitor page' });
      await viewer.keyboard.press('Backspace');
      await waitFor(async () => (await visitor.inputValue('#city')) === 'Denve', { message: 'Backspace' });
      await pair.waitInViewer((doc) => doc.querySelector('#city').value === 'Denve', undefined, 'the agent sees what it typed');
      // A masked field: focused, but keys never change it.
      await reveal(pair, '#card');
      p = await viewerPointOf(viewer, '#card');
      await viewer.mouse.click(p.x, p.y);
      await waitFor(() => visitor.evaluate(() => document.activeElement?.id === 'card'), { message: 'the card field focused' });
      await viewer.keyboard.type('4111', { delay: 20 });
      await visitor.waitForTimeout(400);
      assert.equal(await visitor.inputValue('#card'), '', 'the agent typed into a masked field');
      // The visitor takes control back: the agent's clicks stop.
      await visitor.locator('.cb-ui button', { hasText: 'Take back control' }).click();
      await waitFor(async () => (await pair.viewerState()).control === 'revoked', { message: 'the viewer to learn control was revoked' });
      await reveal(pair, '#place-order');
      p = await viewerPointOf(viewer, '#place-order');
      await viewer.mouse.click(p.x, p.y);
      await visitor.waitForTimeout(500);
      assert.equal(await orders(visitor), 0);
    } finally {
      await pair.close();
    }
  });

  test('the agent\'s pointer, highlight and scroll show on the visitor\'s page', async () => {
    const pair = await openPair(stack, browser, { path: '/' });
    const visitor = pair.visitor.page;
    const viewer = pair.agent.page;
    try {
      const p = await viewerPointOf(viewer, 'h1');
      await viewer.mouse.move(p.x, p.y);
      await viewer.mouse.move(p.x + 10, p.y + 10, { steps: 3 });
      const pointer = visitor.locator('.cb-ui .pointer');
      await pointer.waitFor();
      const tf = await pointer.evaluate((el) => el.style.transform);
      assert.match(tf, /translate\(\d+px, \d+px\)/);
      // Scrolling needs control.
      await viewer.locator('button.control').click();
      await visitor.locator('.cb-ui [data-cb-action="allow"]').click();
      await waitFor(async () => (await pair.viewerState()).control === 'granted', { message: 'control granted' });
      await viewer.mouse.move(p.x, p.y);
      await viewer.mouse.wheel(0, 600);
      await waitFor(async () => (await visitor.evaluate(() => window.scrollY)) > 300, { message: "the visitor's page to scroll" });
      await pair.waitInViewer((doc) => doc.defaultView.scrollY > 300, undefined, 'the viewer to follow the scroll');
    } finally {
      await pair.close();
    }
  });

  test("a host page's consent callback replaces the prompt; the indicator's Stop sharing ends the session", async () => {
    const visitor = await openVisitor(browser, stack.shopUrl('/form.html'));
    const page = visitor.page;
    await page.evaluate((key) => {
      window.__asked = [];
      window.Cobrowse.init({
        key,
        consent: (req) => {
          window.__asked.push(`${req.kind}:${req.agent.name}`);
          return req.kind === 'view'; // watch yes, control no
        },
      });
    }, stack.demo.publishableKey);
    const { sessionId } = await page.evaluate(() => window.Cobrowse.start());
    const agent = await openViewer(browser, await embedUrl(stack, sessionId));
    try {
      await waitInViewer(agent.page, (doc) => !!doc.querySelector('#checkout-form'), undefined, 'the page, allowed by the callback');
      assert.equal(await page.locator('.cb-ui [role="dialog"]').count(), 0, 'no built-in prompt');
      await agent.page.locator('button.control').click();
      await waitFor(async () => (await viewerState(agent.page)).control === 'denied', { message: 'control denied by the callback' });
      assert.deepEqual(await page.evaluate(() => window.__asked), ['view:Dana (Acme support)', 'control:Dana (Acme support)']);
      // The indicator names the agent; its Stop sharing ends the session for everyone.
      const bar = page.locator('.cb-ui [role="status"]');
      assert.match(await bar.innerText(), /Dana \(Acme support\) can see this page/);
      await bar.locator('button', { hasText: 'Stop sharing' }).click();
      await waitFor(async () => (await viewerState(agent.page)).connection === 'ended', { message: 'the viewer to show the end' });
      assert.equal(await page.evaluate(() => window.Cobrowse.state()), 'ended');
      const s = await stack.api('GET', `/v1/sessions/${sessionId}`);
      assert.equal(s.body.status, 'ended');
      assert.equal(s.body.end_reason, 'ended_by_visitor');
    } finally {
      await visitor.ctx.close();
      await agent.ctx.close();
    }
  });
});
