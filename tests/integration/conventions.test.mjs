// Cross-cutting conventions of the REST API against a live server: health and metrics,
// Idempotency-Key, request ids, 404/405, rate limits, session limits and limit inheritance.
// See docs/rest-api.md ("Conventions"). Each run makes its own reseller and sub-tenant.

import { test, before } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import {
  api, ADMIN_TOKEN, ALL_SCOPES, HIGH_LIMITS, expectStatus, expectProblem, assertProblemShape,
  uniq, decodeJwt, isoIn, sleep, newKey, newReseller, newSubTenant, newSession, show,
} from './lib/client.mjs';

const tag = randomBytes(4).toString('hex');
const ORIGIN = `https://www.acme-${tag}.example`;

// The same shape as partner_flow.test.mjs's state: rk (reseller key), sk (sub-tenant key), sub
// (the sub-tenant) and subSettings (what it was created with).
const s = {};

before(async () => {
  assert.ok(ADMIN_TOKEN.startsWith('adm_'), 'COBROWSE_ADMIN_TOKEN must be an adm_ token');
  const reseller = await newReseller();
  s.subSettings = { allowed_origins: [ORIGIN], limits: { ...HIGH_LIMITS } };
  const sub = await newSubTenant(reseller.secret, s.subSettings);
  s.rk = reseller.secret;
  s.sk = sub.secret;
  s.sub = sub.tenant;
});

// ---------------------------------------------------------------------------------------------
// Health and metrics

test('GET /healthz and /readyz answer 200', async () => {
  const h = expectStatus(await api('GET', '/healthz'), 200, '/healthz');
  assert.equal(h.status, 'ok');
  const r = expectStatus(await api('GET', '/readyz'), 200, '/readyz');
  assert.deepEqual({ status: r.status, database: r.database }, { status: 'ready', database: 'ok' });
});

test('GET /metrics exposes http_requests_total, duration buckets and db_pool_ gauges', async () => {
  await api('GET', '/healthz'); // at least one request counted
  const res = await api('GET', '/metrics', { spec: false });
  expectStatus(res, 200, '/metrics');
  assert.match(res.contentType, /^text\/plain/, 'metrics content type');
  for (const name of ['http_requests_total', 'http_request_duration_seconds_bucket', 'db_pool_']) {
    assert.ok(res.text.includes(name), `/metrics must contain ${name}`);
  }
  // Exposition format: a sample line for http_requests_total with a numeric value.
  assert.match(res.text, /^[a-z_]*http_requests_total(\{[^}]*\})? [0-9.eE+-]+$/m, 'http_requests_total sample line');
  assert.match(res.text, /^[a-z_]*http_request_duration_seconds_bucket\{[^}]*le="\+Inf"[^}]*\} [0-9.eE+-]+$/m, 'a +Inf bucket');
});

// ---------------------------------------------------------------------------------------------
// Conventions

test('Idempotency-Key: same body replays, another body is 422 idempotency_key_reused', async () => {
  assert.ok(s.sk, 'previous step failed');
  const ikey = uniq('idem');
  const ext = `idem-${tag}`;
  const body = { visitor: { external_id: ext, name: 'Once' } };
  const r1 = await api('POST', '/v1/sessions', { token: s.sk, body, idempotencyKey: ikey });
  const first = expectStatus(r1, 201, 'first');
  assert.notEqual(r1.headers.get('idempotent-replayed'), 'true', 'the first answer is not a replay');
  const r2 = await api('POST', '/v1/sessions', { token: s.sk, body, idempotencyKey: ikey });
  const second = expectStatus(r2, 201, 'replay');
  assert.equal(r2.headers.get('idempotent-replayed'), 'true', 'Idempotent-Replayed: true');
  assert.equal(second.id, first.id, 'same object');
  assert.deepEqual(second, first, 'the first answer is replayed');
  const r3 = await api('POST', '/v1/sessions', { token: s.sk, body: { visitor: { external_id: ext, name: 'Twice' } }, idempotencyKey: ikey });
  expectProblem(r3, 422, 'idempotency_key_reused');
  const list = expectStatus(await api('GET', `/v1/sessions?external_id=${ext}`, { token: s.sk }), 200);
  assert.equal(list.data.length, 1, 'only one session was created');
  // Without the header the same body creates a new object.
  const r4 = expectStatus(await api('POST', '/v1/sessions', { token: s.sk, body }), 201);
  assert.notEqual(r4.id, first.id);
});

test('Idempotency-Key on POST /v1/tenants replays the created tenant', async () => {
  assert.ok(s.rk, 'previous step failed');
  const ikey = uniq('idem');
  const body = { name: uniq('idem-tenant') };
  const a = await api('POST', '/v1/tenants', { token: s.rk, body, idempotencyKey: ikey });
  expectStatus(a, 201);
  const b = await api('POST', '/v1/tenants', { token: s.rk, body, idempotencyKey: ikey });
  expectStatus(b, 201);
  assert.equal(b.headers.get('idempotent-replayed'), 'true');
  assert.equal(b.body.id, a.body.id);
  expectProblem(await api('POST', '/v1/tenants', { token: s.rk, body: { name: uniq('other') }, idempotencyKey: ikey }), 422, 'idempotency_key_reused');
});

test('every response has a distinct X-Request-Id; problem request_id matches it', async () => {
  assert.ok(s.sk, 'previous step failed');
  const calls = [
    ['GET', '/healthz', {}],
    ['GET', '/readyz', {}],
    ['GET', '/metrics', {}],
    ['GET', '/v1/sessions', { token: s.sk }],
    ['POST', '/v1/sessions', { token: s.sk, body: {} }],
    ['GET', '/v1/tenants', { token: s.rk }],
    ['GET', `/v1/tenants/${s.sub.id}`, { token: s.sk }],
    ['GET', '/v1/api_keys', { token: s.sk }],
    ['GET', '/v1/sessions', {}], // 401 missing key
    ['GET', '/v1/sessions', { token: 'sk_' + 'x'.repeat(52) }], // 401 invalid key
    ['GET', '/v1/no_such_route', { token: s.sk, spec: false }], // 404 route_not_found
    ['PUT', '/v1/sessions', { token: s.sk, body: {}, spec: false }], // 405
    ['OPTIONS', '/v1/sessions', { headers: { origin: ORIGIN, 'access-control-request-method': 'POST' }, spec: false }],
    ['GET', '/v1/token/session', {}], // 401 invalid_token
    ['POST', '/v1/token/session/end', { token: s.sk }], // 401 invalid_token: a key is no session token
    ['OPTIONS', '/v1/token/session', { headers: { origin: ORIGIN, 'access-control-request-method': 'GET' } }],
  ];
  const ids = new Set();
  for (const [m, p, o] of calls) {
    const res = await api(m, p, o);
    const rid = res.headers.get('x-request-id');
    assert.ok(rid && rid.length >= 8, `${m} ${p} -> ${res.status}: X-Request-Id missing or short: ${rid}`);
    assert.ok(!ids.has(rid), `${m} ${p}: X-Request-Id repeated: ${rid}`);
    ids.add(rid);
    if (res.status >= 400) assertProblemShape(res, `${m} ${p}: `);
  }
});

test('unknown route is 404 route_not_found; wrong method is 405 with Allow', async () => {
  assert.ok(s.sk, 'previous step failed');
  expectProblem(await api('GET', '/v1/no_such_route', { token: s.sk, spec: false }), 404, 'route_not_found');
  const res = await api('PUT', `/v1/tenants/${s.sub.id}`, { token: s.sk, body: {}, spec: false });
  expectProblem(res, 405, 'method_not_allowed');
  const allow = (res.headers.get('allow') || '').toUpperCase().split(/\s*,\s*/);
  for (const m of ['GET', 'PATCH', 'DELETE']) assert.ok(allow.includes(m), `Allow lists ${m}: ${allow}`);
});

test('authenticated responses carry RateLimit-Limit/Remaining/Reset', async () => {
  assert.ok(s.sk, 'previous step failed');
  const res = await api('GET', '/v1/sessions', { token: s.sk });
  expectStatus(res, 200);
  assert.equal(res.headers.get('ratelimit-limit'), String(s.subSettings.limits.api_requests_per_second), 'RateLimit-Limit is the tenant\'s api_requests_per_second');
  assert.match(res.headers.get('ratelimit-remaining') || '', /^\d+$/, 'RateLimit-Remaining');
  assert.match(res.headers.get('ratelimit-reset') || '', /^\d+$/, 'RateLimit-Reset');
  assert.ok(Number(res.headers.get('ratelimit-remaining')) < s.subSettings.limits.api_requests_per_second, 'Remaining counts this request');
  // Also on an authenticated error.
  const e = await api('GET', '/v1/sessions/by_code/000000', { token: s.sk });
  assert.ok(e.headers.get('ratelimit-limit'), `RateLimit-Limit on an error answer (${e.status})`);
});

test('rate limit: api_requests_per_second = 5 gives 429 rate_limited with Retry-After after a burst', async () => {
  assert.ok(s.rk, 'previous step failed');
  const { secret: k } = await newSubTenant(s.rk, { limits: { ...HIGH_LIMITS, api_requests_per_second: 5 } });
  const N = 30;
  const results = await Promise.all(Array.from({ length: N }, () =>
    api('GET', '/v1/sessions', { token: k, retryRateLimited: false })));
  const ok = results.filter((r) => r.status === 200);
  const limited = results.filter((r) => r.status === 429);
  assert.equal(ok.length + limited.length, N, `only 200 and 429 expected: ${results.map((r) => r.status)}`);
  assert.ok(ok.length >= 1, 'some requests pass');
  assert.ok(ok.length <= 10, `at most about 5 requests in a second pass, got ${ok.length}`);
  for (const r of ok) {
    assert.equal(r.headers.get('ratelimit-limit'), '5', 'RateLimit-Limit on 200');
    const rem = r.headers.get('ratelimit-remaining');
    assert.match(rem || '', /^\d+$/, 'RateLimit-Remaining on 200');
    assert.ok(Number(rem) <= 5);
    assert.match(r.headers.get('ratelimit-reset') || '', /^\d+$/, 'RateLimit-Reset on 200');
  }
  let wait = 0;
  for (const r of limited) {
    expectProblem(r, 429, 'rate_limited');
    const ra = r.headers.get('retry-after');
    assert.match(ra || '', /^\d+$/, `Retry-After on 429: ${ra}`);
    assert.ok(Number(ra) >= 1 && Number(ra) <= 60, `Retry-After in seconds: ${ra}`);
    wait = Math.max(wait, Number(ra));
    assert.equal(r.headers.get('ratelimit-limit'), '5', 'RateLimit-Limit on 429');
    assert.equal(r.headers.get('ratelimit-remaining'), '0', 'RateLimit-Remaining on 429');
    assert.match(r.headers.get('ratelimit-reset') || '', /^\d+$/, 'RateLimit-Reset on 429');
  }
  await sleep(wait * 1000 + 100);
  expectStatus(await api('GET', '/v1/sessions', { token: k, retryRateLimited: false }), 200, 'after Retry-After');
});

test('concurrent session limit: third live session is 429 session_limit_reached until one ends', async () => {
  assert.ok(s.rk, 'previous step failed');
  const { secret: k } = await newSubTenant(s.rk, { limits: { ...HIGH_LIMITS, concurrent_sessions: 2 } });
  const a = await newSession(k, {});
  await newSession(k, {});
  expectProblem(await api('POST', '/v1/sessions', { token: k, body: {} }), 429, 'session_limit_reached', undefined, 'third');
  expectStatus(await api('POST', `/v1/sessions/${a.id}/end`, { token: k }), 200, 'end one');
  await newSession(k, {});
  expectProblem(await api('POST', '/v1/sessions', { token: k, body: {} }), 429, 'session_limit_reached', undefined, 'third again');
});

test('a parent lowering its limit caps its sub-tenant (the smaller of the two applies)', async () => {
  const r = await newReseller();
  const c = await newSubTenant(r.secret, { limits: { ...HIGH_LIMITS, concurrent_sessions: 50 } });
  expectStatus(await api('PATCH', `/v1/tenants/${r.tenant.id}`, { token: ADMIN_TOKEN, body: { limits: { concurrent_sessions: 1 } } }), 200, 'admin lowers the reseller');
  await newSession(c.secret, {});
  expectProblem(await api('POST', '/v1/sessions', { token: c.secret, body: {} }), 429, 'session_limit_reached', undefined, 'child capped by parent');
});
