// The proxy's own listener (--proxy-listen, api/listen.h), against a server of its own:
// - a slow upstream server holds only the connections that asked for it: many cache misses wait
//   at once (none refused), while the REST API and a cache hit answer;
// - the REST API's listener buffers at most --max-body-bytes of a body (only the proxy listener
//   takes a stylesheet upload's 1 MiB), measured as the server's peak memory;
// - each listener answers its own routes only.
// The origin is a loopback server of this file; the proxy may reach 127.0.0.0/8 here.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import net from 'node:net';
import { readFileSync, writeFileSync } from 'node:fs';
import { api, expectStatus } from './lib/client.mjs';
import { startServer } from '../relay/lib/server.mjs';
import { platform } from '../relay/lib/platform.mjs';
import { origin, proxyUrl, PNG } from './lib/proxy_origin.mjs';

const HELD = 24; // more than the REST API's worker threads and than the old limit of waiters
const F = {};
let srv;

before(async () => {
  srv = await startServer({
    name: 'proxy-listener',
    flags: { 'proxy-allow-private': '127.0.0.0/8', 'http-threads': 4 },
    // ulfius reallocates a body's buffer for every chunk read, also once it is full: under
    // AddressSanitizer each of those blocks would wait in its quarantine, and the peak memory
    // would measure the quarantine rather than what the server keeps.
    env: { COBROWSE_PROXY_ALLOW_PRIVATE: '', ASAN_OPTIONS: [process.env.ASAN_OPTIONS, 'quarantine_size_mb=0'].filter(Boolean).join(':') },
  });
  F.held = new Promise((r) => { F.release = r; });
  const png = (req, res) => { res.writeHead(200, { 'content-type': 'image/png', 'cache-control': 'max-age=60' }); res.end(PNG); };
  const routes = { '/warm.png': png };
  for (let i = 0; i < HELD; i++) routes[`/slow/${i}.png`] = async (req, res) => { await F.held; png(req, res); };
  F.o = await origin({ routes });
  const P = platform(srv);
  const tenant = await P.tenant({ allowed_origins: [F.o.origin] });
  const session = await P.session(tenant.id);
  const agent = await P.agentToken(tenant.id, session.id);
  F.base = expectStatus(await api('GET', `${srv.baseUrl}/v1/token/session`, { token: agent.token }), 200, 'context').proxy_base;
});

after(async () => {
  F.release?.();
  await F.o?.close();
  const r = await srv?.stop();
  if (r) assert.ok(!/ERROR: (Address|Leak)Sanitizer|runtime error:/.test(r.log), 'sanitizers quiet');
});

/** GET on a connection of its own -> {status, text}. */
function get(url) {
  return new Promise((resolve, reject) => {
    http.get(url, { agent: false }, (res) => {
      let text = '';
      res.on('data', (c) => { text += c; });
      res.on('end', () => resolve({ status: res.statusCode, text }));
      res.on('error', reject);
    }).on('error', reject);
  });
}

async function waiting() {
  const text = (await get(`${srv.baseUrl}/metrics`)).text;
  return Number(text.match(/^cobrowse_proxy_waiting (\d+)$/m)?.[1] ?? -1);
}

function status(pid) {
  const s = readFileSync(`/proc/${pid}/status`, 'utf8');
  const kib = (k) => Number(s.match(new RegExp(`^${k}:\\s+(\\d+) kB`, 'm'))[1]);
  return { rss: kib('VmRSS'), peak: kib('VmHWM') };
}

test('the REST listener buffers at most --max-body-bytes of a body: 60 bodies of 1 MiB leave its peak memory nearly flat', { timeout: 30_000 }, async () => {
  const N = 60, LEN = 1 << 20;
  writeFileSync(`/proc/${srv.pid}/clear_refs`, '5'); // resets VmHWM (the peak) to the current RSS
  const before = status(srv.pid);
  const sockets = [];
  const answers = [];
  for (let i = 0; i < N; i++) {
    const s = net.connect(srv.port, '127.0.0.1');
    sockets.push(s);
    let got = '';
    answers.push(new Promise((resolve) => {
      s.on('data', (d) => { got += d; });
      s.on('close', () => resolve(got));
      s.on('error', () => {});
    }));
    await new Promise((r) => s.once('connect', r));
    s.write(`POST /v1/tenants HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: ${LEN}\r\nConnection: close\r\n\r\n`);
    await new Promise((r) => s.write(Buffer.alloc(LEN - 1, 0x20), r));
  }
  // Every body but its last byte is sent: the server has read it by now (loopback, a second).
  await new Promise((r) => setTimeout(r, 1000));
  const during = status(srv.pid);
  for (const s of sockets) s.end('}');
  const got = await Promise.all(answers);
  const grew = (Math.max(during.peak, status(srv.pid).peak) - before.rss) / 1024;
  // Buffered whole, the bodies alone would be 60 MiB; capped at 64 KiB each, under 4 MiB.
  assert.ok(grew < 30, `the server's peak memory grew by ${grew.toFixed(1)} MiB for ${N} bodies of 1 MiB`);
  for (const a of got) assert.match(a, /^HTTP\/1\.1 413 /, a.slice(0, 200));
});

test('a slow upstream holds only the connections that asked: 24 misses wait at once while the API and a cache hit answer', { timeout: 60_000 }, async () => {
  assert.equal((await get(proxyUrl(F.base, 'asset', F.o.url('/warm.png')))).status, 200, 'warm-up');
  const held = Array.from({ length: HELD }, (_, i) => get(proxyUrl(F.base, 'asset', F.o.url(`/slow/${i}.png`))));
  for (const t0 = Date.now(); (await waiting()) < HELD;) {
    assert.ok(Date.now() - t0 < 20_000, `${HELD} requests wait for the upstream at once (now ${await waiting()})`);
    await new Promise((r) => setTimeout(r, 20));
  }
  // While all of them wait: the API answers, and so does a hit on the proxy listener.
  assert.equal((await get(`${srv.baseUrl}/healthz`)).status, 200);
  const hit = await get(proxyUrl(F.base, 'asset', F.o.url('/warm.png')));
  assert.equal(hit.status, 200, hit.text);
  assert.equal(F.o.hits('/warm.png'), 1, 'a hit');
  F.release();
  for (const r of await Promise.all(held)) assert.equal(r.status, 200, r.text);
  for (let i = 0; i < HELD; i++) assert.equal(F.o.hits(`/slow/${i}.png`), 1);
  assert.equal(await waiting(), 0);
});

test('each listener answers its own routes: uploads and proxy URLs on the proxy listener, the API on its own', async () => {
  // Plain fetch: the spec documents this operation on the proxy listener only.
  const onApi = await fetch(`${srv.baseUrl}/v1/token/session/stylesheets`, {
    method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ url: 'http://x/a.css', text: 'a{}' }),
  });
  assert.equal(onApi.status, 404);
  assert.equal((await onApi.json()).code, 'route_not_found');
  const proxyOnApi = await get(`${srv.baseUrl}${new URL(proxyUrl(F.base, 'asset', F.o.url('/warm.png'))).pathname}`);
  assert.equal(proxyOnApi.status, 404, proxyOnApi.text);
  const apiOnProxy = await get(`${srv.proxyUrl}/v1/tenants`);
  assert.equal(apiOnProxy.status, 404, apiOnProxy.text);
  assert.equal(JSON.parse(apiOnProxy.text).code, 'route_not_found');
  assert.equal((await get(`${srv.proxyUrl}/healthz`)).status, 404);
});
