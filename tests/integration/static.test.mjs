// The browser files cobrowsed serves (web/README.md, "What cobrowsed serves"; api/static/static.c):
// content types, strong ETags and 304, pre-compressed gzip variants, caching per kind, CORS on
// the SDK, the viewer's Content-Security-Policy with the tenant's allowed origins in
// frame-ancestors, 404 for unknown tenants and files, no path traversal, 405 for other methods.
//
// The server under test must serve a web build (scripts/test.sh builds web/ into build/asan/web,
// beside the binary, where cobrowsed finds it; or --web-root). The test uses only the files the
// contract names (the SDK, the viewer page, the demo console) and the assets the viewer page
// refers to, so it holds for any build.
//
// Requests go through node:http so that paths are sent byte for byte (fetch would normalise
// "/assets/../x" before sending it) and Accept-Encoding is exactly what the test says.

import { test, before } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import { gunzipSync } from 'node:zlib';
import { randomBytes } from 'node:crypto';
import { BASE_URL, api, expectStatus, newReseller, newSubTenant, newSession, mutateId } from './lib/client.mjs';

const tag = randomBytes(4).toString('hex');
const ORIGINS = [`https://shop-${tag}.example`, 'http://localhost:3000'];
const base = new URL(BASE_URL);

/** raw(method, path, headers) -> {status, headers (lower-case names), body: Buffer, text} */
function raw(method, path, headers = {}) {
  return new Promise((resolve, reject) => {
    const req = http.request({ host: base.hostname, port: base.port, method, path, headers, agent: false }, (res) => {
      const chunks = [];
      res.on('data', (c) => chunks.push(c));
      res.on('end', () => {
        const body = Buffer.concat(chunks);
        resolve({ status: res.statusCode, headers: res.headers, body, text: body.toString('utf8') });
      });
      res.on('error', reject);
    });
    req.on('error', reject);
    req.setTimeout(10000, () => req.destroy(new Error(`${method} ${path}: timeout`)));
    req.end();
  });
}
const show = (r) => `${r.status} ${JSON.stringify(r.headers).slice(0, 400)} ${r.text.slice(0, 200)}`;

function expectCommon(r, what) {
  assert.equal(r.headers['x-content-type-options'], 'nosniff', `${what}: nosniff (${show(r)})`);
  assert.equal(r.headers['referrer-policy'], 'no-referrer', `${what}: Referrer-Policy`);
  assert.ok(r.headers['x-request-id'], `${what}: X-Request-Id`);
}
function expectNotFound(r, what) {
  assert.equal(r.status, 404, `${what}: ${show(r)}`);
  expectCommon(r, what);
}

/** The CSP header as {directive: [sources]}. */
function csp(r) {
  const out = {};
  for (const part of String(r.headers['content-security-policy'] || '').split(';')) {
    const [name, ...sources] = part.trim().split(/\s+/);
    if (name) out[name] = sources;
  }
  return out;
}

const F = {};

before(async () => {
  F.R = await newReseller();
  F.S = await newSubTenant(F.R.secret, { allowed_origins: ORIGINS });
  F.bare = await newSubTenant(F.R.secret, {}, { withKey: false });
  F.session = await newSession(F.S.secret, {});
  F.viewer = await raw('GET', `/viewer/${F.S.tenant.id}`);
  assert.equal(F.viewer.status, 200, `the server must serve the web build (viewer page): ${show(F.viewer)}`);
  // The assets the viewer page refers to (content-hashed names).
  F.assets = [...new Set([...F.viewer.text.matchAll(/(?:src|href)="(\/assets\/[^"?#]+)"/g)].map((m) => m[1]))];
});

// ---------------------------------------------------------------------------------------------
// The SDK

test('SDK: 200 JavaScript, CORS for any origin, 5 minutes of caching, a strong ETag', async () => {
  const r = await raw('GET', '/sdk/v1/cobrowse.js', { origin: 'https://anywhere.example' });
  assert.equal(r.status, 200, show(r));
  expectCommon(r, 'SDK');
  assert.equal(r.headers['content-type'], 'text/javascript; charset=utf-8');
  assert.equal(r.headers['access-control-allow-origin'], '*');
  assert.equal(r.headers['cache-control'], 'public, max-age=300');
  assert.match(r.headers.etag || '', /^"[0-9a-f]{16}"$/, 'strong ETag');
  assert.equal(r.headers['content-encoding'], undefined, 'no gzip unless asked');
  assert.equal(Number(r.headers['content-length']), r.body.length);
  assert.ok(r.body.length > 0, 'a body');
  const q = await raw('GET', '/sdk/v1/cobrowse.js?v=2&token=x');
  assert.equal(q.status, 200, 'a query string is ignored');
  assert.equal(q.headers.etag, r.headers.etag);
});

test('ETag: If-None-Match answers 304 without a body; another tag answers 200', async () => {
  const r = await raw('GET', '/sdk/v1/cobrowse.js');
  const etag = r.headers.etag;
  for (const inm of [etag, `W/${etag}`, `"0000000000000000", ${etag}`, '*']) {
    const n = await raw('GET', '/sdk/v1/cobrowse.js', { 'if-none-match': inm });
    assert.equal(n.status, 304, `If-None-Match: ${inm}: ${show(n)}`);
    assert.equal(n.body.length, 0, '304 has no body');
    assert.equal(n.headers.etag, etag);
    assert.equal(n.headers['cache-control'], 'public, max-age=300');
    expectCommon(n, '304');
  }
  const other = await raw('GET', '/sdk/v1/cobrowse.js', { 'if-none-match': '"0000000000000000"' });
  assert.equal(other.status, 200);
  assert.ok(other.body.equals(r.body));
});

test('HEAD: the same headers as GET and no body', async () => {
  const g = await raw('GET', '/sdk/v1/cobrowse.js');
  const h = await raw('HEAD', '/sdk/v1/cobrowse.js');
  assert.equal(h.status, 200, show(h));
  assert.equal(h.body.length, 0);
  for (const name of ['content-type', 'etag', 'cache-control', 'access-control-allow-origin', 'content-length']) {
    assert.equal(h.headers[name], g.headers[name], `HEAD ${name}`);
  }
});

// ---------------------------------------------------------------------------------------------
// gzip variants

test('gzip: the pre-compressed variant goes to clients that accept it, with its own ETag', async () => {
  const files = ['/sdk/v1/cobrowse.js', ...F.assets];
  let compressed = 0;
  for (const path of files) {
    const plain = await raw('GET', path);
    assert.equal(plain.status, 200, `${path}: ${show(plain)}`);
    const gz = await raw('GET', path, { 'accept-encoding': 'gzip, deflate, br' });
    assert.equal(gz.status, 200);
    if (gz.headers['content-encoding'] === undefined) {
      assert.equal(plain.headers.vary, undefined, `${path}: no variant, so no Vary`);
      continue;
    }
    compressed++;
    assert.equal(gz.headers['content-encoding'], 'gzip', path);
    assert.equal(gz.headers.vary, 'Accept-Encoding', `${path}: Vary on the gzip answer`);
    assert.equal(plain.headers.vary, 'Accept-Encoding', `${path}: Vary on the plain answer too`);
    assert.equal(gz.headers['content-type'], plain.headers['content-type'], 'the type of the original');
    assert.ok(gunzipSync(gz.body).equals(plain.body), `${path}: the .gz is the same file`);
    assert.notEqual(gz.headers.etag, plain.headers.etag, 'each variant has its own strong ETag');
    const n = await raw('GET', path, { 'accept-encoding': 'gzip', 'if-none-match': gz.headers.etag });
    assert.equal(n.status, 304, '304 for the gzip variant\'s ETag');
    const cross = await raw('GET', path, { 'if-none-match': gz.headers.etag });
    assert.equal(cross.status, 200, 'the gzip ETag does not validate the plain variant');
    for (const ae of ['gzip;q=0', 'identity', 'br', '*;q=0']) {
      const no = await raw('GET', path, { 'accept-encoding': ae });
      assert.equal(no.headers['content-encoding'], undefined, `Accept-Encoding: ${ae}`);
    }
  }
  assert.ok(compressed > 0, `at least one file has a .gz variant (checked ${files.join(', ')})`);
});

// ---------------------------------------------------------------------------------------------
// Assets

test('assets of the viewer page: content type by extension, cached for a year as immutable', async () => {
  assert.ok(F.assets.length > 0, `the viewer page refers to /assets/ files: ${F.viewer.text.slice(0, 300)}`);
  for (const path of F.assets) {
    const r = await raw('GET', path);
    assert.equal(r.status, 200, `${path}: ${show(r)}`);
    expectCommon(r, path);
    assert.equal(r.headers['cache-control'], 'public, max-age=31536000, immutable', path);
    const want = path.endsWith('.js') ? 'text/javascript; charset=utf-8' : path.endsWith('.css') ? 'text/css; charset=utf-8' : null;
    if (want) assert.equal(r.headers['content-type'], want, path);
    assert.match(r.headers.etag || '', /^"[0-9a-f]{16}"$/);
    assert.equal(r.headers['access-control-allow-origin'], undefined, 'no CORS on assets');
  }
});

// ---------------------------------------------------------------------------------------------
// The viewer

test('viewer: HTML, no-cache, a strict CSP with the tenant\'s origins in frame-ancestors', async () => {
  const r = F.viewer;
  expectCommon(r, 'viewer');
  assert.equal(r.headers['content-type'], 'text/html; charset=utf-8');
  assert.equal(r.headers['cache-control'], 'no-cache');
  assert.match(r.headers.etag || '', /^"[0-9a-f]{16}"$/);
  const p = csp(r);
  assert.deepEqual(p['default-src'], ["'none'"]);
  assert.deepEqual(p['script-src'], ["'self'"], 'only the platform\'s own scripts');
  assert.deepEqual(p['base-uri'], ["'none'"]);
  assert.deepEqual(p['form-action'], ["'none'"]);
  assert.deepEqual(p['frame-src'], ["'self'"]);
  assert.deepEqual(p['frame-ancestors'], ["'self'", ...ORIGINS], 'embeddable by the tenant\'s origins only');
  const relay = new URL(F.session.relay_url);
  assert.ok(p['connect-src'].includes("'self'"));
  assert.ok(p['connect-src'].includes(`${relay.protocol}//${relay.host}`), `connect-src has the relay's origin: ${p['connect-src']}`);
  for (const d of ['style-src', 'img-src', 'font-src', 'media-src']) assert.ok(p[d], `${d} present`);
  assert.ok(!String(r.headers['content-security-policy']).includes('unsafe-eval'));
  assert.ok(!p['script-src'].includes("'unsafe-inline'"));
});

test('viewer: a tenant without allowed origins is framed by the platform\'s origin only', async () => {
  const r = await raw('GET', `/viewer/${F.bare.tenant.id}`);
  assert.equal(r.status, 200, show(r));
  assert.deepEqual(csp(r)['frame-ancestors'], ["'self'"]);
  assert.ok(r.body.equals(F.viewer.body), 'the same page for every tenant');
});

test('viewer: unknown, malformed and deleted tenants are 404 pages', async () => {
  for (const id of [mutateId(F.S.tenant.id), 'not-a-tenant', 'ten_', F.session.id, `${F.S.tenant.id}x`]) {
    const r = await raw('GET', `/viewer/${id}`);
    expectNotFound(r, `viewer ${id}`);
    assert.ok(!r.text.includes('<script'), 'no viewer for it');
  }
  const gone = await newSubTenant(F.R.secret, { allowed_origins: ORIGINS }, { withKey: false });
  expectStatus(await api('DELETE', `/v1/tenants/${gone.tenant.id}`, { token: F.R.secret }), 200);
  // The node caches a tenant's origins for up to key_cache_seconds: this tenant was never asked.
  expectNotFound(await raw('GET', `/viewer/${gone.tenant.id}`), 'deleted tenant');
  expectNotFound(await raw('GET', '/viewer/'), 'no tenant');
  expectNotFound(await raw('GET', `/viewer/${F.S.tenant.id}/extra`), 'extra segment');
});

// ---------------------------------------------------------------------------------------------
// The demo console

test('demo console: /demo/console redirects to /demo/console/, served with a strict CSP', async () => {
  const redirect = await raw('GET', '/demo/console');
  assert.equal(redirect.status, 301, show(redirect));
  assert.equal(redirect.headers.location, '/demo/console/');
  const r = await raw('GET', '/demo/console/');
  assert.equal(r.status, 200, show(r));
  expectCommon(r, 'console');
  assert.equal(r.headers['content-type'], 'text/html; charset=utf-8');
  assert.equal(r.headers['cache-control'], 'no-cache');
  const p = csp(r);
  assert.deepEqual(p['default-src'], ["'none'"]);
  assert.deepEqual(p['script-src'], ["'self'"]);
  assert.deepEqual(p['frame-ancestors'], ["'self'"]);
  assert.deepEqual(p['frame-src'], ["'self'"]);
});

// ---------------------------------------------------------------------------------------------
// What is not served

test('unknown files and prefixes are 404 problems', async () => {
  for (const path of ['/assets/nope-00000000.js', '/assets/', '/sdk/v1/other.js', '/sdk/v2/cobrowse.js', '/sdk/', '/demo/site/', '/demo/console/index.html', '/viewer']) {
    const r = await raw('GET', path);
    expectNotFound(r, path);
    assert.match(r.headers['content-type'] || '', /^application\/problem\+json|^text\/html/, path);
  }
  const r = await raw('GET', '/assets/nope-00000000.js');
  const b = JSON.parse(r.text);
  assert.equal(b.code, 'route_not_found');
  assert.equal(b.request_id, r.headers['x-request-id']);
});

const TRAVERSALS = [
  '/assets/../viewer/index.html',
  '/assets/../../../../etc/passwd',
  '/assets/%2e%2e/viewer/index.html',
  '/assets/%2E%2E/%2E%2E/etc/passwd',
  '/assets/..%2fviewer%2findex.html',
  '/assets/%2e%2e%2f%2e%2e%2fetc%2fpasswd',
  '/assets/.%2e/sdk/v1/cobrowse.js',
  '/assets/./x.js',
  '/assets//etc/passwd',
  '/assets/%2fetc%2fpasswd',
  '/assets/..\\..\\etc\\passwd',
  '/assets/%5c..%5cetc%5cpasswd',
  '/assets/x.js%00.css',
  '/sdk/v1/../v1/cobrowse.js',
  '/sdk/v1/%2e%2e/v1/cobrowse.js',
  '/viewer/..%2f..%2fetc%2fpasswd',
  '/viewer/%2e%2e',
  '/demo/console/../../sdk/v1/cobrowse.js',
  '/demo/console/%2e%2e/%2e%2e/etc/passwd',
];
for (const path of TRAVERSALS) {
  test(`traversal ${path} -> 404`, async () => {
    const r = await raw('GET', path);
    assert.ok(r.status === 404 || r.status === 400, `${path}: ${show(r)}`);
    assert.ok(!/root:x?:0:0/.test(r.text), `${path}: leaked /etc/passwd`);
    assert.ok(!r.body.equals(F.viewer.body), `${path}: served the viewer page`);
    assert.ok(!r.text.includes('<script'), `${path}: served a page with scripts`);
    assert.notEqual(r.headers['cache-control'], 'public, max-age=300', `${path}: served the SDK`);
  });
}

test('other methods than GET and HEAD are 405 with Allow', async () => {
  for (const [m, path] of [
    ['POST', '/sdk/v1/cobrowse.js'], ['PUT', '/sdk/v1/cobrowse.js'], ['DELETE', `/viewer/${F.S.tenant.id}`],
    ['POST', `/viewer/${F.S.tenant.id}`], ['PATCH', '/demo/console/'], ['POST', F.assets[0] || '/assets/x.js'],
  ]) {
    const r = await raw(m, path);
    assert.equal(r.status, 405, `${m} ${path}: ${show(r)}`);
    expectCommon(r, `${m} ${path}`);
    assert.equal(r.headers.allow, 'GET, HEAD');
    assert.equal(JSON.parse(r.text).code, 'method_not_allowed');
  }
});

test('the REST API is unaffected: an unknown /v1 route is still route_not_found', async () => {
  const r = await raw('GET', '/v1/assets/x');
  assert.equal(r.status, 404);
  assert.equal(JSON.parse(r.text).code, 'route_not_found');
  expectStatus(await api('GET', '/healthz', { spec: false }), 200);
});
