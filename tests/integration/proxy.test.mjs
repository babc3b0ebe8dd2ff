// The stylesheet, font and image proxy (docs/proxy.md) against a real server of its own (the
// proxy may reach 127.0.0.0/8 there: the origins below are loopback servers of this file):
// signing (tampered, expired, other session, other tenant), kinds and targets, the origin
// allow-list, content types, the size limit, the answer's headers, the cache (a hit never reaches
// the origin; revalidation with ETag and Last-Modified), in-flight deduplication and the upload
// route's bounds.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import { api, expectStatus, expectProblem } from './lib/client.mjs';
import { startServer } from '../relay/lib/server.mjs';
import { platform } from '../relay/lib/platform.mjs';
import { origin, proxyUrl, b64url, signer, PNG } from './lib/proxy_origin.mjs';

const MAX_BYTES = 65536;
const F = {};
let srv, P, sign;

const css = (body, extra = {}) => (req, res) => {
  res.writeHead(200, { 'content-type': 'text/css', 'cache-control': 'max-age=60', ...extra });
  res.end(body);
};
const png = (extra = {}) => (req, res) => {
  res.writeHead(200, { 'content-type': 'image/png', 'cache-control': 'max-age=60', ...extra });
  res.end(PNG);
};

before(async () => {
  srv = await startServer({
    name: 'proxy',
    flags: {
      'proxy-allow-private': '127.0.0.0/8', 'proxy-max-bytes': MAX_BYTES,
      // The deduplication test holds one fetch while 9 more requests arrive one by one.
      'proxy-timeout-ms': 20000, 'http-request-seconds': 30,
    },
    env: { COBROWSE_PROXY_ALLOW_PRIVATE: '' },
  });
  P = platform(srv);
  sign = signer(srv.jwtSecret);
  F.released = null;
  F.held = new Promise((r) => { F.release = r; });
  F.o = await origin({
    routes: {
      '/site.css': css('a:hover{color:red} .b{background:url(img/b.png)} .c{background:url("data:image/png;base64,AA")}'),
      '/img/b.png': png(),
      '/cached.png': png(),
      '/page.html': (req, res) => { res.writeHead(200, { 'content-type': 'text/html' }); res.end('<script>x</script>'); },
      '/script.js': (req, res) => { res.writeHead(200, { 'content-type': 'text/javascript' }); res.end('x()'); },
      '/font.woff2': (req, res) => { res.writeHead(200, { 'content-type': 'font/woff2' }); res.end('wOF2'); },
      '/big.png': (req, res) => { res.writeHead(200, { 'content-type': 'image/png' }); res.end(Buffer.alloc(MAX_BYTES + 1)); },
      '/gone.css': (req, res) => { res.writeHead(404, { 'content-type': 'text/plain' }); res.end('gone'); },
      '/etag.css': (req, res) => {
        if (req.headers['if-none-match'] === '"v1"') { res.writeHead(304, { etag: '"v1"', 'cache-control': 'max-age=0' }); res.end(); return; }
        css('.e{color:blue}', { etag: '"v1"', 'cache-control': 'max-age=0' })(req, res);
      },
      '/lm.png': (req, res) => {
        const lm = 'Wed, 01 Jan 2025 00:00:00 GMT';
        if (req.headers['if-modified-since'] === lm) { res.writeHead(304, { 'last-modified': lm, 'cache-control': 'max-age=0' }); res.end(); return; }
        png({ 'last-modified': lm, 'cache-control': 'max-age=0' })(req, res);
      },
      '/held.png': async (req, res) => { await F.held; png()(req, res); },
    },
  });
  F.assets = await origin({ routes: { '/logo.png': png() } });
  F.elsewhere = await origin({ routes: { '/x.png': png(), '/x.css': css(`.z{background:url(${'/x.png'})}`) } });
  F.tenant = await P.tenant({ allowed_origins: [F.o.origin], asset_origins: [F.assets.origin] });
  F.session = await P.session(F.tenant.id);
  F.agent = await P.agentToken(F.tenant.id, F.session.id);
  const ctx = expectStatus(await api('GET', `${srv.baseUrl}/v1/token/session`, { token: F.agent.token }), 200, 'context');
  F.base = ctx.proxy_base;
  F.cap = F.base.split('/v1/proxy/')[1];
  F.other = await P.session(F.tenant.id);
  F.otherAgent = await P.agentToken(F.tenant.id, F.other.id);
  const ctx2 = expectStatus(await api('GET', `${srv.baseUrl}/v1/token/session`, { token: F.otherAgent.token }), 200, 'context');
  F.otherBase = ctx2.proxy_base;
});

after(async () => {
  F.release?.();
  await Promise.all([F.o?.close(), F.assets?.close(), F.elsewhere?.close()]);
  const r = await srv?.stop();
  if (r) assert.ok(!/ERROR: (Address|Leak)Sanitizer|runtime error:/.test(r.log), 'sanitizers quiet');
});

// One new connection per request (agent: false): MHD keeps a connection on the worker thread that
// accepted it, and a worker waiting for a fetch serves nothing else, so a reused connection could
// sit behind a request the test holds on purpose.
function get(url, headers = {}) {
  return new Promise((resolve, reject) => {
    http.get(url, { agent: false, headers }, (res) => {
      const chunks = [];
      res.on('data', (c) => chunks.push(c));
      res.on('error', reject);
      res.on('end', () => {
        const body = Buffer.concat(chunks);
        const h = new Headers();
        for (const [k, v] of Object.entries(res.headers)) h.set(k, Array.isArray(v) ? v.join(', ') : v);
        const problem = /problem\+json/.test(h.get('content-type') || '') ? JSON.parse(body.toString()) : null;
        resolve({ status: res.statusCode, headers: h, body, text: body.toString('utf8'), problem });
      });
    }).on('error', reject);
  });
}

function expectProxyError(r, status, code) {
  assert.equal(r.status, status, `expected ${status} ${code}, got ${r.status} ${r.text}`);
  assert.equal(r.problem?.code, code, r.text);
  assert.equal(r.headers.get('cache-control'), 'no-store');
  assert.equal(r.headers.get('x-content-type-options'), 'nosniff');
}

test('proxy_base is given to agents only, with the tenant\'s asset_origins', async () => {
  assert.match(F.base, new RegExp(`^${srv.proxyUrl}/v1/proxy/${F.tenant.id}\\.${F.session.id}\\.[0-9]+\\.[A-Za-z0-9_-]{22}$`));
  const v = expectStatus(await api('GET', `${srv.baseUrl}/v1/token/session`, { token: F.session.visitor_token }), 200, 'visitor');
  assert.equal(v.proxy_base, null);
  assert.deepEqual(v.asset_origins, [F.assets.origin]);
  // Visitors upload to the proxy listener; agents upload nothing.
  assert.equal(v.stylesheet_upload_url, `${srv.proxyUrl}/v1/token/session/stylesheets`);
  const a = expectStatus(await api('GET', `${srv.baseUrl}/v1/token/session`, { token: F.agent.token }), 200, 'agent');
  assert.equal(a.stylesheet_upload_url, null);
});

test('a stylesheet is served rewritten, with the headers that keep it inert', async () => {
  const r = await get(proxyUrl(F.base, 'css', F.o.url('/site.css')));
  assert.equal(r.status, 200, r.text);
  assert.match(r.headers.get('content-type'), /^text\/css/);
  assert.equal(r.headers.get('x-content-type-options'), 'nosniff');
  assert.equal(r.headers.get('content-security-policy'), "default-src 'none'; style-src 'unsafe-inline'; sandbox");
  // The viewer is on the API's origin, the proxy on its own listener's: fonts load in CORS mode.
  assert.equal(r.headers.get('cross-origin-resource-policy'), 'cross-origin');
  assert.equal(r.headers.get('access-control-allow-origin'), '*');
  assert.equal(r.headers.get('access-control-allow-credentials'), null);
  assert.equal(r.headers.get('referrer-policy'), 'no-referrer');
  const cc = r.headers.get('cache-control').match(/^private, max-age=(\d+)$/);
  assert.ok(cc && Number(cc[1]) <= 300 && Number(cc[1]) > 0, r.headers.get('cache-control'));
  assert.match(r.headers.get('etag'), /^"[0-9a-f]{16}"$/);
  // The image URL became a ref-signed proxy URL relative to the stylesheet's own.
  const m = r.text.match(/url\("(\.\.\/asset\/[A-Za-z0-9_-]+\.[A-Za-z0-9_-]{22})"\)/);
  assert.ok(m, r.text);
  assert.ok(r.text.includes('data:image/png;base64,AA'), 'data: URLs are left alone');
  const img = await get(new URL(m[1], proxyUrl(F.base, 'css', F.o.url('/site.css'))).href);
  assert.equal(img.status, 200, img.text);
  assert.deepEqual(img.body, PNG);
  const again = await get(proxyUrl(F.base, 'css', F.o.url('/site.css')), { 'if-none-match': r.headers.get('etag') });
  assert.equal(again.status, 304);
  // Another agent's cap gets the same cached bytes (nothing in them names a cap), and their
  // relative URLs resolve under its own cap.
  const fetched = F.o.hits('/site.css');
  const other = await get(proxyUrl(F.otherBase, 'css', F.o.url('/site.css')));
  assert.equal(other.status, 200);
  assert.equal(other.text, r.text);
  assert.equal(other.headers.get('etag'), r.headers.get('etag'));
  assert.equal(F.o.hits('/site.css'), fetched, 'a hit for the second agent: no fetch');
  const img2 = await get(new URL(m[1], proxyUrl(F.otherBase, 'css', F.o.url('/site.css'))).href);
  assert.equal(img2.status, 200, img2.text);
});

test('signing: a tampered, expired or foreign cap, and a tampered or other-tenant ref, are refused', async () => {
  const target = b64url(F.o.url('/cached.png'));
  const [t, s, exp, mac] = F.cap.split('.');
  const flip = (str) => str.slice(0, -2) + (str.at(-2) === 'A' ? 'B' : 'A') + str.at(-1);
  expectProxyError(await get(`${srv.proxyUrl}/v1/proxy/${t}.${s}.${exp}.${flip(mac)}/asset/${target}`), 403, 'proxy_cap_invalid');
  expectProxyError(await get(`${srv.proxyUrl}/v1/proxy/${t}.${s}.${Number(exp) + 1}.${mac}/asset/${target}`), 403, 'proxy_cap_invalid');
  const old = Math.floor(Date.now() / 1000) - 10;
  expectProxyError(await get(`${srv.proxyUrl}/v1/proxy/${sign.cap(t, s, old)}/asset/${target}`), 403, 'proxy_cap_expired');
  // A ref is the tenant's: any of its caps may use it (the stylesheet that named the URL is
  // cached and served as it is to every agent of the tenant), another tenant's may not.
  const ref = sign.ref(F.tenant.id, 'asset', target);
  assert.equal((await get(`${F.base}/asset/${target}.${ref}`)).status, 200);
  assert.equal((await get(`${F.otherBase}/asset/${target}.${ref}`)).status, 200);
  expectProxyError(await get(`${F.base}/asset/${target}.${flip(ref)}`), 403, 'proxy_ref_invalid');
  expectProxyError(await get(`${F.base}/css/${target}.${ref}`), 403, 'proxy_ref_invalid');
  assert.equal((await get(`${F.base}/asset/${target}/${ref}`)).status, 404, 'no route has a fourth segment');
  // A cap naming this tenant with another tenant's session (signed right): no such session.
  const other = await P.tenant({ allowed_origins: [F.o.origin] });
  const foreign = await P.session(other.id);
  const mixed = sign.cap(F.tenant.id, foreign.id, Number(exp));
  expectProxyError(await get(`${srv.proxyUrl}/v1/proxy/${mixed}/asset/${b64url(F.o.url('/font.woff2'))}`), 404, 'not_found');
  // The other tenant's cap with this tenant's ref.
  const otherAgent = await P.agentToken(other.id, foreign.id);
  const otherCtx = expectStatus(await api('GET', `${srv.baseUrl}/v1/token/session`, { token: otherAgent.token }), 200, 'context');
  expectProxyError(await get(`${otherCtx.proxy_base}/asset/${target}.${ref}`), 403, 'proxy_ref_invalid');
});

test('kinds and targets: malformed ones are 400', async () => {
  const good = b64url(F.o.url('/cached.png'));
  expectProxyError(await get(`${F.base}/script/${good}`), 400, 'invalid_parameter');
  expectProxyError(await get(`${F.base}/asset/${good}=`), 400, 'invalid_parameter');
  expectProxyError(await get(`${F.base}/asset/${b64url('ftp://127.0.0.1/x.png')}`), 400, 'invalid_parameter');
  expectProxyError(await get(`${F.base}/asset/${b64url('/relative.png')}`), 400, 'invalid_parameter');
  expectProxyError(await get(`${F.base}/asset/${b64url(`http://u:p@127.0.0.1:${F.o.port}/x.png`)}`), 400, 'invalid_parameter');
  expectProxyError(await get(`${F.base}/asset/${b64url(F.o.url('/' + 'a'.repeat(2049)))}`), 400, 'invalid_parameter');
  const r = await get(`${F.base}/asset`);
  assert.ok(r.status === 404 || r.status === 400, `a path too short is not a proxy URL: ${r.status}`);
});

test('allow-list: allowed_origins and asset_origins pass, any other origin only with a ref', async () => {
  assert.equal((await get(proxyUrl(F.base, 'asset', F.assets.url('/logo.png')))).status, 200);
  const r = await get(proxyUrl(F.base, 'asset', F.elsewhere.url('/x.png')));
  expectProxyError(r, 403, 'proxy_origin_not_allowed');
  assert.equal(F.elsewhere.hits('/x.png'), 0, 'nothing fetched');
  const target = b64url(F.elsewhere.url('/x.png'));
  assert.equal((await get(`${F.base}/asset/${target}.${sign.ref(F.tenant.id, 'asset', target)}`)).status, 200);
});

test('content types: html and scripts are refused (415), fonts pass', async () => {
  expectProxyError(await get(proxyUrl(F.base, 'asset', F.o.url('/page.html'))), 415, 'proxy_type_not_allowed');
  expectProxyError(await get(proxyUrl(F.base, 'css', F.o.url('/page.html'))), 415, 'proxy_type_not_allowed');
  expectProxyError(await get(proxyUrl(F.base, 'asset', F.o.url('/script.js'))), 415, 'proxy_type_not_allowed');
  expectProxyError(await get(proxyUrl(F.base, 'css', F.o.url('/cached.png'))), 415, 'proxy_type_not_allowed');
  const font = await get(proxyUrl(F.base, 'asset', F.o.url('/font.woff2')));
  assert.equal(font.status, 200);
  assert.equal(font.headers.get('content-type'), 'font/woff2');
});

test('size limit: a body over --proxy-max-bytes is 413', async () => {
  expectProxyError(await get(proxyUrl(F.base, 'asset', F.o.url('/big.png'))), 413, 'proxy_too_large');
});

test('an upstream error status is 502 naming it', async () => {
  const r = await get(proxyUrl(F.base, 'css', F.o.url('/gone.css')));
  expectProxyError(r, 502, 'proxy_fetch_failed');
  assert.match(r.problem.detail, /404/);
});

test('a cache hit never reaches the origin', async () => {
  const u = proxyUrl(F.base, 'asset', F.o.url('/cached.png'));
  assert.equal((await get(u)).status, 200);
  const before = F.o.hits('/cached.png');
  for (let i = 0; i < 5; i++) assert.equal((await get(u)).status, 200);
  // Another session of the same tenant shares the tenant's cache.
  assert.equal((await get(proxyUrl(F.otherBase, 'asset', F.o.url('/cached.png')))).status, 200);
  assert.equal(F.o.hits('/cached.png'), before);
});

test('revalidation: a stale entry is asked for with its ETag or Last-Modified; 304 serves it', async () => {
  for (const [path, header] of [['/etag.css', 'if-none-match'], ['/lm.png', 'if-modified-since']]) {
    const kind = path.endsWith('.css') ? 'css' : 'asset';
    const first = await get(proxyUrl(F.base, kind, F.o.url(path)));
    assert.equal(first.status, 200, first.text);
    const second = await get(proxyUrl(F.base, kind, F.o.url(path)));
    assert.equal(second.status, 200, second.text);
    assert.deepEqual(second.body, first.body);
    assert.equal(F.o.hits(path), 2);
    const last = F.o.seen.filter((s) => s.path === path).at(-1);
    assert.ok(last.headers[header], `the second request carried ${header}`);
  }
});

test('in-flight deduplication: 10 parallel requests make 1 origin request', async () => {
  const u = proxyUrl(F.base, 'asset', F.o.url('/held.png'));
  const metric = async () => {
    const text = (await get(`${srv.baseUrl}/metrics`)).text;
    return Number(text.match(/cobrowse_proxy_requests_total\{result="deduplicated"\} (\d+)/)?.[1] ?? 0);
  };
  const until = async (what, ok) => {
    for (const t0 = Date.now(); !(await ok());) {
      assert.ok(Date.now() - t0 < 20000, what);
      await new Promise((r) => setTimeout(r, 10));
    }
  };
  const start = await metric();
  // The origin holds its answer until requests wait for the first one's fetch (each on its own
  // connection's thread). Either way, one origin request.
  const all = Array.from({ length: 10 }, () => get(u));
  await until('a request waits for another one\'s fetch',
    async () => F.o.hits('/held.png') === 1 && (await metric()) > start);
  F.release();
  for (const r of await Promise.all(all)) assert.equal(r.status, 200, r.text);
  assert.equal(F.o.hits('/held.png'), 1);
});

test('upload: the visitor\'s copy is served for a stylesheet the proxy cannot fetch', async () => {
  const url = F.o.url('/gone.css');
  const up = await api('POST', `${srv.proxyUrl}/v1/token/session/stylesheets`, {
    token: F.session.visitor_token, body: { url, text: 'a:hover{color:green} .i{background:url(img/b.png)}' },
  });
  assert.equal(up.status, 204, JSON.stringify(up.body));
  const r = await get(proxyUrl(F.base, 'css', url) + '?r=1');
  assert.equal(r.status, 200, r.text);
  assert.match(r.text, /color:green/);
  assert.match(r.text, /url\("\.\.\/asset\/[A-Za-z0-9_-]+\.[A-Za-z0-9_-]{22}"\)/);
  // Another session does not see it.
  expectProxyError(await get(proxyUrl(F.otherBase, 'css', url)), 502, 'proxy_fetch_failed');
});

test('upload bounds: agent tokens, unknown fields, bad URLs, over 1 MiB, the byte budget, an ended session', async () => {
  const post = (token, body, opts = {}) => api('POST', `${srv.proxyUrl}/v1/token/session/stylesheets`, { token, body, ...opts });
  expectProblem(await post(F.agent.token, { url: F.o.url('/a.css'), text: 'a{}' }), 403, 'visitor_token_required');
  expectProblem(await post(F.session.visitor_token, { url: F.o.url('/a.css'), text: 'a{}', x: 1 }), 400, 'unknown_field');
  expectProblem(await post(F.session.visitor_token, { url: 'javascript:x', text: 'a{}' }), 400, 'invalid_parameter', 'url');
  expectProblem(await post(F.session.visitor_token, { url: F.o.url('/a.css') }), 400, 'invalid_parameter', 'text');
  expectProblem(await post(F.session.visitor_token, { url: F.o.url('/a.css'), text: 'a'.repeat((1 << 20) + 1) }), 400, 'invalid_parameter', 'text');
  assert.equal((await post(F.session.visitor_token, { url: F.o.url('/a.css'), text: 'a'.repeat(1 << 20) })).status, 204);
  // 1000 bytes per second, a burst of 4000: 3000 pass, 3000 more do not yet.
  const slow = await P.tenant({ allowed_origins: [F.o.origin], limits: { bytes_per_second: 1000 } });
  const s = await P.session(slow.id);
  assert.equal((await post(s.visitor_token, { url: F.o.url('/a.css'), text: 'b'.repeat(3000) })).status, 204);
  const over = await post(s.visitor_token, { url: F.o.url('/b.css'), text: 'b'.repeat(3000) }, { retryRateLimited: false });
  expectProblem(over, 429, 'byte_budget_exceeded');
  assert.ok(Number(over.headers.get('retry-after')) >= 1);
  // An ended session stores nothing more (its visitor token is still within its lifetime).
  const done = await P.session(F.tenant.id);
  assert.equal((await post(done.visitor_token, { url: F.o.url('/a.css'), text: 'a{}' })).status, 204);
  await P.endSession(F.tenant.id, done.id);
  expectProblem(await post(done.visitor_token, { url: F.o.url('/a.css'), text: 'a{}' }), 409, 'session_ended');
});

test('an ended session\'s cap fetches nothing new', async () => {
  const s = await P.session(F.tenant.id);
  const a = await P.agentToken(F.tenant.id, s.id);
  const base = expectStatus(await api('GET', `${srv.baseUrl}/v1/token/session`, { token: a.token }), 200, 'ctx').proxy_base;
  await P.endSession(F.tenant.id, s.id);
  expectProxyError(await get(proxyUrl(base, 'asset', F.o.url('/font.woff2') + '?never-cached')), 403, 'proxy_session_inactive');
});
