// The agent sees the page exactly as the visitor does: screenshots of the visitor's viewport and
// of the viewer's replay (at 1:1) differ by less than 1 % of pixels, on every demo page and on
// real-world pages shipped by Debian packages (served on their own origin with the SDK added).

import assert from 'node:assert/strict';
import { createReadStream, existsSync, readFileSync, statSync } from 'node:fs';
import { createServer } from 'node:http';
import { extname, join, normalize, sep } from 'node:path';
import { after, describe, test } from 'node:test';
import { pixelDiff, saveArtifact, screenshot, waitFor } from './lib/browser.mjs';
import { openPair } from './lib/cobrowse.mjs';
import { useStack } from './lib/stack.mjs';

const MAX_DIFF = 0.01;

// Real-world pages from packages scripts/test.sh installs (base-passwd is essential; the
// Doxygen manuals come with libcmocka-dev and libulfius-dev).
const DOCS_ROOT = '/usr/share/doc';
const REAL_PAGES = [
  'base-passwd/users-and-groups.html',
  'libcmocka-dev/html/group__cmocka__asserts.html',
  'libulfius-dev/html/group__u__map.html',
];

const TYPES = { '.html': 'text/html; charset=utf-8', '.css': 'text/css', '.js': 'text/javascript', '.png': 'image/png', '.svg': 'image/svg+xml', '.gif': 'image/gif' };

/** Serves DOCS_ROOT on a loopback origin of its own, with the SDK's script tag added to HTML. */
async function docsSite(api, key) {
  const server = createServer((req, res) => {
    const rel = normalize(decodeURIComponent(new URL(req.url, 'http://x').pathname)).replace(/^([/\\])+/, '');
    const file = join(DOCS_ROOT, rel);
    if (!file.startsWith(DOCS_ROOT + sep) || !existsSync(file) || !statSync(file).isFile()) {
      res.writeHead(404).end();
      return;
    }
    res.setHeader('Content-Type', TYPES[extname(file)] ?? 'application/octet-stream');
    if (extname(file) === '.html') {
      const tag = `<script src="${api}/sdk/v1/cobrowse.js" data-key="${key}"></script>`;
      const html = readFileSync(file, 'utf8');
      res.end(/<\/head>/i.test(html) ? html.replace(/<\/head>/i, `${tag}</head>`) : html + tag);
    } else {
      createReadStream(file).pipe(res);
    }
  });
  await new Promise((r) => server.listen(0, '127.0.0.1', r));
  return { origin: `http://127.0.0.1:${server.address().port}`, close: () => new Promise((r) => server.close(r)) };
}

let stack;
let browser;
let docs;
useStack(async (s, b) => {
  stack = s;
  browser = b;
  docs = await docsSite(stack.baseUrl, stack.demo.publishableKey);
  // The docs site is one more origin of the demo tenant.
  const t = await stack.api('GET', `/v1/tenants/${stack.demo.tenantId}`);
  const origins = [...t.body.allowed_origins, docs.origin];
  const p = await stack.api('PATCH', `/v1/tenants/${stack.demo.tenantId}`, { body: { allowed_origins: origins } });
  assert.equal(p.status, 200, JSON.stringify(p.body));
});
after(async () => {
  await docs?.close();
});

/** Both sides at rest: the visitor has nothing unacknowledged, the viewer applied all of it. */
async function settle(pair) {
  await pair.visitor.page.addStyleTag({ content: '.cb-ui { display: none !important; }' });
  // The pointer rests where the visitor clicked "Allow" (over the page once the prompt is gone,
  // hovering whatever is there without a move the recorder could see): move it off the content.
  await pair.visitor.page.mouse.move(1, 1);
  await pair.visitor.page.evaluate(() => document.fonts.ready);
  await waitFor(async () => {
    const v = await pair.visitor.page.evaluate(() => window.Cobrowse._stats());
    const a = await pair.viewerState();
    return v.pendingFrames === 0 && a.lastSeq === v.nextSeq - 1 && a.framesApplied === a.framesReceived;
  }, { message: 'both sides at rest' });
  await pair.agent.page.waitForTimeout(700); // the replayer's timer and a paint
  const st = await pair.viewerState();
  assert.equal(st.scale, 1, 'the viewer shows the page at 1:1');
}

async function compare(t, pair, name) {
  await settle(pair);
  const a = await screenshot(pair.visitor.page);
  const b = await screenshot(pair.agent.page, { locator: 'iframe' });
  const d = pixelDiff(a, b);
  if (d.ratio >= MAX_DIFF) {
    saveArtifact(`fidelity/${name}-visitor.png`, a);
    saveArtifact(`fidelity/${name}-viewer.png`, b);
    saveArtifact(`fidelity/${name}-diff.png`, d.diffPng);
  }
  t.diagnostic(`${name}: ${(d.ratio * 100).toFixed(3)} % of ${d.width}x${d.height} pixels differ`);
  assert.ok(d.ratio < MAX_DIFF, `${name}: ${(d.ratio * 100).toFixed(2)} % of pixels differ (see .cobrowse/e2e-artifacts/fidelity/)`);
}

describe('the viewer shows what the visitor sees', () => {
  for (const path of ['/', '/form.html', '/canvas.html?still=1', '/spa', '/spa/trips']) {
    test(`demo page ${path}`, async (t) => {
      const pair = await openPair(stack, browser, { path });
      try {
        await compare(t, pair, `demo${path.replace(/\W+/g, '_')}`);
      } finally {
        await pair.close();
      }
    });
  }
  for (const page of REAL_PAGES) {
    test(`real-world page ${page}`, async (t) => {
      assert.ok(existsSync(join(DOCS_ROOT, page)), `${page} is installed (scripts/test.sh installs its package)`);
      const pair = await openPair(stack, browser, { url: `${docs.origin}/${page}` });
      try {
        await compare(t, pair, page.split('/')[0]);
      } finally {
        await pair.close();
      }
    });
  }
});
