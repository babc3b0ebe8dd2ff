// The SDK's side of the stylesheet fallback (web/sdk/stylesheets.ts): which requests are
// answered by an upload, which by asset_unavailable and why, and one upload per URL per page.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { load } from './bundle.mjs';

const { Stylesheets, MAX_STYLESHEET_BYTES } = await load('sdk/stylesheets.ts');

const sheet = (href, ...rules) => ({ href, cssRules: rules.map((cssText) => ({ cssText })) });
const crossOrigin = (href) => ({
  href,
  get cssRules() {
    const e = new Error("Failed to read the 'cssRules' property");
    e.name = 'SecurityError';
    throw e;
  },
});

function harness(sheets, { ok = true } = {}) {
  const h = { uploads: [], sent: [] };
  h.s = new Stylesheets({
    sheets: () => sheets,
    upload: async (url, text) => (h.uploads.push({ url, text }), typeof ok === 'function' ? ok() : ok),
    send: (a) => h.sent.push(a),
  });
  return h;
}

const URL1 = 'https://shop.example/css/site.css';

test('a readable sheet of the page is uploaded with its rules, then asset_ready', async () => {
  const h = harness([sheet('https://shop.example/other.css', 'p { }'), sheet(URL1, 'a:hover { color: red; }', '@font-face { src: url("f.woff2"); }')]);
  assert.deepEqual(await h.s.request(URL1), { type: 'asset_ready', url: URL1 });
  assert.deepEqual(h.uploads, [{ url: URL1, text: 'a:hover { color: red; }\n@font-face { src: url("f.woff2"); }' }]);
  assert.deepEqual(h.sent, [{ type: 'asset_ready', url: URL1 }]);
});

test('a URL that is no sheet of the page is never fetched or uploaded: not_found', async () => {
  const h = harness([sheet(URL1, 'a{}'), sheet(null, 'b{}')]);
  for (const url of ['https://intranet.example/secret.css', 'https://shop.example/css/site.css?x', 'http://169.254.169.254/']) {
    assert.deepEqual(await h.s.request(url), { type: 'asset_unavailable', url, reason: 'not_found' });
  }
  assert.equal(h.uploads.length, 0);
});

test('a cross-origin sheet without CORS is unreadable; one over 1 MiB is too_large; a failed upload is upload_failed', async () => {
  const big = 'https://shop.example/big.css';
  const wide = 'https://shop.example/wide.css';
  const h = harness([crossOrigin(URL1), sheet(big, 'a{b:c}'.repeat(MAX_STYLESHEET_BYTES / 6 + 1)), sheet(wide, 'a{content:"' + 'é'.repeat(600000) + '"}')]);
  assert.deepEqual(await h.s.request(URL1), { type: 'asset_unavailable', url: URL1, reason: 'unreadable' });
  assert.deepEqual(await h.s.request(big), { type: 'asset_unavailable', url: big, reason: 'too_large' });
  assert.deepEqual(await h.s.request(wide), { type: 'asset_unavailable', url: wide, reason: 'too_large' }, '1.2 MB of UTF-8 in 0.6 M characters');
  assert.equal(h.uploads.length, 0);

  const f = harness([sheet(URL1, 'a{}')], { ok: false });
  assert.deepEqual(await f.s.request(URL1), { type: 'asset_unavailable', url: URL1, reason: 'upload_failed' });
  const t = harness([sheet(URL1, 'a{}')], { ok: () => Promise.reject(new TypeError('network')) });
  assert.deepEqual(await t.s.request(URL1), { type: 'asset_unavailable', url: URL1, reason: 'upload_failed' });
});

test('at most one upload per URL per page: requests at once and later get the same answer', async () => {
  const h = harness([sheet(URL1, 'a{}')]);
  const answers = await Promise.all([h.s.request(URL1), h.s.request(URL1)]);
  await h.s.request(URL1);
  assert.equal(h.uploads.length, 1);
  assert.equal(h.s.uploads, 1);
  assert.deepEqual(answers, [{ type: 'asset_ready', url: URL1 }, { type: 'asset_ready', url: URL1 }]);
  assert.equal(h.sent.length, 3, 'every request is answered');

  const f = harness([sheet(URL1, 'a{}')], { ok: false });
  await f.s.request(URL1);
  await f.s.request(URL1);
  assert.equal(f.uploads.length, 1, 'a failed upload is not retried on this page');
});
