// The stylesheet, font and image proxy in the agent's browser (docs/proxy.md): a visitor page
// whose stylesheet and web font come from a second loopback origin shows its :hover style and its
// font in the viewer (loaded through the proxy). That origin sends no CORS headers with the
// stylesheet (so the viewer could not read its rules) and allows only the visitor's page to use
// the font (Access-Control-Allow-Origin: the page's origin, as sites do), so the agent's browser
// could not load it directly; the visitor's page shows it. And the fallback:
// a stylesheet the server may not fetch is uploaded by the visitor's SDK and shown.
//
// Origins: the visitor's page on 127.0.0.2 (the server's SSRF guard refuses it: scripts/test.sh
// allows 127.0.0.1 only), the stylesheet and font server on 127.0.0.1 (reachable by the server).

import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { createServer } from 'node:http';
import { after, test } from 'node:test';
import { saveArtifact, screenshot, waitFor } from './lib/browser.mjs';
import { openPair } from './lib/cobrowse.mjs';
import { useStack } from './lib/stack.mjs';

const FONT = readFileSync('/usr/share/fonts/truetype/dejavu/DejaVuSansMono.ttf');
const HOVER = 'rgb(12, 34, 56)';
const OWN_HOVER = 'rgb(65, 43, 21)';

/** A loopback HTTP server: routes {path: [type, body, headers?]} (body and headers may be
 * functions), no CORS headers unless a route names them; counts requests. */
async function site(host, routes) {
  const hits = {};
  const server = createServer((req, res) => {
    const path = new URL(req.url, 'http://x').pathname;
    hits[path] = (hits[path] ?? 0) + 1;
    const r = routes[path];
    if (!r) {
      res.writeHead(404).end();
      return;
    }
    const extra = typeof r[2] === 'function' ? r[2]() : (r[2] ?? {});
    res.writeHead(200, { 'Content-Type': r[0], 'Cache-Control': 'no-store', ...extra });
    res.end(typeof r[1] === 'function' ? r[1]() : r[1]);
  });
  await new Promise((ok) => server.listen(0, host, ok));
  const close = () =>
    new Promise((ok) => {
      server.close(ok);
      server.closeAllConnections();
    });
  return { origin: `http://${host}:${server.address().port}`, hits, close };
}

let stack;
let browser;
let assets;
let page;
useStack(async (s, b) => {
  stack = s;
  browser = b;
  assets = await site('127.0.0.1', {
    '/site.css': ['text/css', `@font-face{font-family:CbProxyTest;src:url(/font.ttf) format("truetype")}
.target{font:20px CbProxyTest,serif;background-color:rgb(250,250,250);padding:20px;display:inline-block}
.target:hover{background-color:${HOVER}}`],
    '/font.ttf': ['font/ttf', FONT, () => ({ 'Access-Control-Allow-Origin': page.origin })],
  });
  const html = (css) => `<!doctype html><html><head><meta charset="utf-8">
<link rel="stylesheet" href="${css}">
<script src="${stack.baseUrl}/sdk/v1/cobrowse.js" data-key="${stack.demo.publishableKey}"></script>
</head><body><p><span class="target" id="t">Proxied stylesheet and font</span></p></body></html>`;
  page = await site('127.0.0.2', {
    '/index.html': ['text/html; charset=utf-8', () => html(`${assets.origin}/site.css`)],
    '/own.html': ['text/html; charset=utf-8', () => html('/own.css')],
    '/own.css': ['text/css', `.target{padding:20px;display:inline-block;background-color:rgb(250,250,250)}
.target:hover{background-color:${OWN_HOVER}}`],
  });
  const t = await stack.api('GET', `/v1/tenants/${stack.demo.tenantId}`);
  const p = await stack.api('PATCH', `/v1/tenants/${stack.demo.tenantId}`, {
    body: { allowed_origins: [...t.body.allowed_origins, page.origin], asset_origins: [assets.origin] },
  });
  assert.equal(p.status, 200, JSON.stringify(p.body));
});

after(async () => {
  await Promise.all([assets?.close(), page?.close()]);
});

/** The viewer's proxy counters (docs/viewer.md, "Test hooks"); fails without a proxy_base. */
async function assetStats(pair) {
  const st = await pair.viewerState();
  assert.ok(st.assets, 'GET /v1/token/session gave the viewer a proxy_base');
  return st.assets;
}

/** Hovers the element in the visitor's page; waits for the viewer to show colour. */
async function hoverShows(pair, colour) {
  const plain = await pair.inViewer((doc) => getComputedStyle(doc.querySelector('#t')).backgroundColor);
  assert.notEqual(plain, colour);
  await pair.visitor.page.locator('#t').hover();
  await pair.waitInViewer((doc, want) => getComputedStyle(doc.querySelector('#t')).backgroundColor === want, colour, `the hover colour ${colour} in the viewer`);
}

test('a stylesheet and web font from another origin without CORS: the viewer shows the hover style and the font, through the proxy', async () => {
  const pair = await openPair(stack, browser, { url: `${page.origin}/index.html` });
  try {
    const st = await assetStats(pair);
    assert.ok(st.rewritten >= 1, 'the stylesheet link was rewritten');
    const href = await pair.inViewer((doc) => doc.querySelector('link[rel~=stylesheet]').getAttribute('href'));
    assert.match(href, /\/v1\/proxy\/[^/]+\/css\/[A-Za-z0-9_-]+$/, 'the link points at the proxy');
    await hoverShows(pair, HOVER);
    await pair.waitInViewer(
      (doc) => [...doc.fonts].some((f) => f.family.replace(/"/g, '') === 'CbProxyTest' && f.status === 'loaded'),
      undefined,
      'the web font loaded in the replay',
    );
    // The font applies: the same text measures as the visitor's (monospace DejaVu, not serif),
    // which loaded the font itself (the font's CORS header names the page's origin).
    const visitorFont = await pair.visitor.page.evaluate(async () => {
      await document.fonts.ready;
      const loaded = [...document.fonts].some((f) => f.family.replace(/"/g, '') === 'CbProxyTest' && f.status === 'loaded');
      return { loaded, width: document.querySelector('#t').getBoundingClientRect().width };
    });
    assert.ok(visitorFont.loaded, 'the visitor page loaded the font itself');
    const want = visitorFont.width;
    await pair.waitInViewer((doc, w) => Math.abs(doc.querySelector('#t').getBoundingClientRect().width - w) < 1, want, 'the text measured in the web font');
    assert.ok(assets.hits['/site.css'] >= 1 && assets.hits['/font.ttf'] >= 1, 'the proxy fetched both');
    saveArtifact('proxy-hover.png', await screenshot(pair.agent.page));
    assert.deepEqual(pair.agent.errors, []);
  } finally {
    await pair.close();
  }
});

test('fallback: a stylesheet the server may not fetch is uploaded by the visitor and the viewer shows it', async () => {
  const pair = await openPair(stack, browser, { url: `${page.origin}/own.html` });
  try {
    await waitFor(async () => (await assetStats(pair)).ready >= 1, { message: 'asset_ready for the page own stylesheet' });
    const st = await assetStats(pair);
    assert.equal(st.requested, 1, 'one asset_request for the one stylesheet');
    assert.ok(st.failed >= 1 && st.reloads >= 1, JSON.stringify(st));
    assert.equal(await pair.visitor.page.evaluate(() => window.Cobrowse._stats().stylesheetUploads), 1);
    const href = await pair.inViewer((doc) => doc.querySelector('link[rel~=stylesheet]').getAttribute('href'));
    assert.match(href, /\?r=1$/, 'the link loads the proxy URL again');
    await hoverShows(pair, OWN_HOVER);
    saveArtifact('proxy-fallback.png', await screenshot(pair.agent.page));
  } finally {
    await pair.close();
  }
});
