// A visitor and an agent co-browsing, for the end-to-end tests: the visitor's page on the demo
// shop (or any site), the session started through the SDK, the agent's viewer opened at the
// embed_url the partner backend returns, the view consent given, and helpers to look into both.
//
//   const pair = await openPair(stack, browser, { path: '/form.html' });
//   await pair.waitInViewer((doc) => doc.querySelector('#name')?.value === 'Ann');
//   await pair.close();

import assert from 'node:assert/strict';
import { captureReceivedFrames, captureSentFrames, newContext, waitFor } from './browser.mjs';

export const VISITOR_VIEWPORT = { width: 1100, height: 720 };
// Wide enough that the viewer never scales the visitor's page down (toolbar above it).
export const AGENT_VIEWPORT = { width: 1280, height: 900 };

/** Page errors and CSP violations of a page, to assert on. */
export function watchErrors(page) {
  const errors = [];
  page.on('pageerror', (e) => errors.push(`pageerror: ${e.message}`));
  page.on('console', (m) => {
    if (m.type() === 'error' && !/^Failed to load resource/.test(m.text())) errors.push(`console: ${m.text()}`);
  });
  return errors;
}

/** The visitor's page with the SDK loaded, its sent frames captured. */
export async function openVisitor(browser, url, { viewport = VISITOR_VIEWPORT } = {}) {
  const ctx = await newContext(browser, { viewport });
  const page = await ctx.newPage();
  const sent = captureSentFrames(page);
  const errors = watchErrors(page);
  await page.goto(url);
  await page.waitForFunction(() => typeof window.Cobrowse === 'object');
  return { ctx, page, sent, errors };
}

/** An agent token's embed_url for a session of the demo tenant (through the partner backend). */
export async function embedUrl(stack, sessionId) {
  const j = await stack.partner('POST', `/partner/sessions/${sessionId}/join`);
  assert.equal(j.status, 200, `join: ${JSON.stringify(j.body)}`);
  return j.body.embed_url;
}

/** The agent's viewer, opened directly at embed_url (as a partner's iframe would load it). */
export async function openViewer(browser, url, { viewport = AGENT_VIEWPORT } = {}) {
  const ctx = await newContext(browser, { viewport });
  // Keeps the page's WebSockets reachable (window.__testSockets) so that a test can drop them as
  // a network would (offline emulation only blocks new connections).
  await ctx.addInitScript(() => {
    const Native = window.WebSocket;
    window.__testSockets = [];
    window.WebSocket = class extends Native {
      constructor(...args) {
        super(...args);
        window.__testSockets.push(this);
      }
    };
  });
  const page = await ctx.newPage();
  const received = captureReceivedFrames(page);
  const errors = watchErrors(page);
  await page.goto(url);
  await page.waitForFunction(() => typeof window.__cbViewer === 'object');
  return { ctx, page, received, errors };
}

export const viewerState = (page) => page.evaluate(() => window.__cbViewer.state());

/** Clicks "Allow" on the SDK's consent prompt (in its shadow root). */
export async function allow(page) {
  const b = page.locator('.cb-ui [data-cb-action="allow"]');
  await b.waitFor();
  await b.click();
}

export async function deny(page) {
  const b = page.locator('.cb-ui [data-cb-action="deny"]');
  await b.waitFor();
  await b.click();
}

/** Evaluates fn(replayDocument, arg) in the viewer page. */
export function inViewer(viewerPage, fn, arg) {
  return viewerPage.evaluate(
    ([src, a]) => {
      const doc = window.__cbViewer.replayDocument();
      // eslint-disable-next-line no-new-func
      return doc ? new Function('doc', 'arg', `return (${src})(doc, arg)`)(doc, a) : undefined;
    },
    [fn.toString(), arg],
  );
}

/** Waits until fn(replayDocument, arg) is truthy in the viewer. */
export function waitInViewer(viewerPage, fn, arg, message = 'the viewer to show it') {
  return waitFor(() => inViewer(viewerPage, fn, arg), { message, timeout: 15000 });
}

/**
 * A co-browsing pair: the visitor opens url (a shop path or a full URL), starts a session, an
 * agent opens the viewer, the visitor allows, and the viewer shows the page.
 */
export async function openPair(stack, browser, { path = '/', url, consent = true } = {}) {
  const visitor = await openVisitor(browser, url ?? stack.shopUrl(path));
  const { sessionId, joinCode } = await visitor.page.evaluate(() => window.Cobrowse.start());
  const agent = await openViewer(browser, await embedUrl(stack, sessionId));
  if (consent) {
    await allow(visitor.page);
    await waitFor(async () => (await viewerState(agent.page)).replayersCreated >= 1, { message: 'the first page in the viewer' });
    await waitInViewer(agent.page, (doc) => doc.body && doc.body.childElementCount > 0, undefined, 'the replayed body');
  }
  return {
    sessionId,
    joinCode,
    visitor,
    agent,
    waitInViewer: (fn, arg, msg) => waitInViewer(agent.page, fn, arg, msg),
    inViewer: (fn, arg) => inViewer(agent.page, fn, arg),
    viewerState: () => viewerState(agent.page),
    async close() {
      await visitor.page.evaluate(() => window.Cobrowse?.end()).catch(() => {});
      await visitor.ctx.close().catch(() => {});
      await agent.ctx.close().catch(() => {});
    },
  };
}

/** The point (viewer page coordinates) over the centre of selector's element in the replay. */
export async function viewerPointOf(viewerPage, selector) {
  return viewerPage.evaluate((sel) => {
    const doc = window.__cbViewer.replayDocument();
    const el = doc.querySelector(sel);
    const iframe = doc.defaultView.frameElement;
    const fr = iframe.getBoundingClientRect();
    const r = el.getBoundingClientRect();
    const scale = fr.width / iframe.offsetWidth || 1;
    return { x: fr.left + (r.left + r.width / 2) * scale, y: fr.top + (r.top + r.height / 2) * scale };
  }, selector);
}

/**
 * Scrolls the visitor's page so that selector's element is in the middle of the viewport, and
 * waits until the viewer shows the same scroll position (so that a point in the viewer maps to
 * that element on the visitor's page).
 */
export async function reveal(pair, selector) {
  const y = await pair.visitor.page.evaluate((sel) => {
    document.querySelector(sel).scrollIntoView({ block: 'center', behavior: 'instant' });
    return Math.round(window.scrollY);
  }, selector);
  await waitInViewer(pair.agent.page, (doc, want) => Math.abs(doc.defaultView.scrollY - want) <= 1, y, `the viewer to scroll to ${y}`);
}
