// The webhook REST API (docs/webhooks.md, "Endpoints"): endpoints and their secrets, validation,
// tenant isolation, rotation, test events, replays, deliveries and retries, scopes. Delivery
// itself (a real receiver verifying signatures) is tests/integration/webhooks*.test.mjs's other
// files. Receivers here are https://127.0.0.1:9/..., an address the dispatcher's SSRF guard
// refuses on this server (no --webhook-allow-private), so no request ever leaves the machine and
// the tests do not depend on what the dispatcher does meanwhile.

import { test, before } from 'node:test';
import assert from 'node:assert/strict';
import {
  api, ADMIN_TOKEN, expectStatus, expectProblem, uniq, mutateId, newKey, newReseller,
  newSubTenant, newSession,
} from './lib/client.mjs';
import { sql, DATABASE_URL } from './lib/db.mjs';
import { startServer, assertCleanExit } from '../relay/lib/server.mjs';

const skipDb = DATABASE_URL ? false : 'DATABASE_URL is not set (scripts/test.sh sets it)';
const hookUrl = () => `https://127.0.0.1:9/hooks/${uniq('h')}`;
const SECRET_RE = /^whsec_[A-Za-z0-9+/]{43}=$/;

const F = {};
before(async () => {
  F.A = await newReseller();
  F.B = await newReseller();
  F.A1 = await newSubTenant(F.A.secret);
  F.C = await newReseller(); // keeps F.A under the cap of 16 endpoints a tenant
});

async function newEndpoint(token, body = {}, tenant) {
  const res = await api('POST', '/v1/webhook_endpoints', { token, tenant, body: { url: hookUrl(), ...body } });
  return expectStatus(res, 201, 'create endpoint');
}

async function testDelivery(token, endpointId, tenant) {
  const res = await api('POST', `/v1/webhook_endpoints/${endpointId}/test`, { token, tenant });
  return expectStatus(res, 202, 'test event');
}

test('create shows the secret once: never in get or list', async () => {
  const res = await api('POST', '/v1/webhook_endpoints', { token: F.A.secret, body: { url: hookUrl(), description: 'billing', event_types: ['session.ended', 'session.created'] } });
  const e = expectStatus(res, 201, 'create endpoint');
  assert.equal(res.headers.get('cache-control'), 'no-store', 'an answer with a secret is never stored');
  assert.match(e.id, /^whe_[0-9A-Z]{26}$/);
  assert.match(e.secret, SECRET_RE);
  assert.equal(Buffer.from(e.secret.slice(6), 'base64').length, 32);
  assert.equal(e.object, 'webhook_endpoint');
  assert.equal(e.tenant_id, F.A.tenant.id);
  assert.deepEqual(e.event_types, ['session.created', 'session.ended']);
  assert.equal(e.enabled, true);
  assert.equal(e.disabled_reason, null);
  assert.equal(e.include_subtenants, false);
  const got = expectStatus(await api('GET', `/v1/webhook_endpoints/${e.id}`, { token: F.A.secret }), 200);
  assert.equal(got.secret, undefined);
  assert.ok(!JSON.stringify(got).includes(e.secret.slice(6)));
  const list = expectStatus(await api('GET', '/v1/webhook_endpoints?limit=100', { token: F.A.secret }), 200);
  const mine = list.data.find((x) => x.id === e.id);
  assert.ok(mine, 'the new endpoint is listed');
  assert.ok(list.data.every((x) => x.secret === undefined));
  assert.ok(!JSON.stringify(list).includes(e.secret.slice(6)));
});

test('the database holds the secret sealed, never its bytes', { skip: skipDb }, async () => {
  const e = await newEndpoint(F.A.secret);
  const raw = Buffer.from(e.secret.slice(6), 'base64');
  const [[hex, text]] = await sql(
    "SELECT encode(secret_sealed, 'hex'), row_to_json(w)::text FROM webhook_endpoints w WHERE id = :'p1'", e.id);
  assert.equal(hex.length, 2 * (32 + 12 + 16), 'nonce, ciphertext and tag');
  assert.ok(!hex.includes(raw.toString('hex')), 'the secret bytes are not stored');
  assert.ok(!text.includes(e.secret.slice(6)) && !text.includes(raw.toString('hex')));
});

test('validation: https only here, no credentials, bounded, known event types, no unknown fields', async () => {
  const post = (body) => api('POST', '/v1/webhook_endpoints', { token: F.A.secret, body });
  // The shared server has no --webhook-allow-private: plain http is refused, even to loopback.
  expectProblem(await post({ url: 'http://127.0.0.1:9/hook' }), 422, 'invalid_field', 'url');
  expectProblem(await post({ url: 'http://hooks.example.com/hook' }), 422, 'invalid_field', 'url');
  expectProblem(await post({ url: 'https://user:pw@hooks.example.com/hook' }), 422, 'invalid_field', 'url');
  expectProblem(await post({ url: '/relative/hook' }), 422, 'invalid_field', 'url');
  expectProblem(await post({ url: 'ftp://hooks.example.com/hook' }), 422, 'invalid_field', 'url');
  const long = `https://hooks.example.com/${'a'.repeat(2048)}`;
  expectProblem(await post({ url: long }), 422, 'invalid_field', 'url');
  // 2,048 bytes but fewer characters: the bound is in bytes.
  const multibyte = `https://hooks.example.com/${'é'.repeat(1015)}`;
  assert.ok(multibyte.length <= 2048 && Buffer.byteLength(multibyte) > 2048);
  expectProblem(await post({ url: multibyte }), 422, 'invalid_field', 'url');
  expectProblem(await post({}), 422, 'missing_field', 'url');
  expectProblem(await post({ url: hookUrl(), secret: 'whsec_mine' }), 422, 'unknown_field', 'secret');
  expectProblem(await post({ url: hookUrl(), event_types: ['session.created', 'session.exploded'] }), 422, 'invalid_field', 'event_types.1');
  expectProblem(await post({ url: hookUrl(), event_types: 'session.created' }), 422, 'invalid_field', 'event_types');
  expectProblem(await post({ url: hookUrl(), description: 'x'.repeat(501) }), 422, 'invalid_field', 'description');
  expectProblem(await post({ url: hookUrl(), enabled: 'yes' }), 422, 'invalid_field', 'enabled');
  const e = await newEndpoint(F.A.secret);
  const patch = (body) => api('PATCH', `/v1/webhook_endpoints/${e.id}`, { token: F.A.secret, body });
  expectProblem(await patch({ url: 'http://hooks.example.com/' }), 422, 'invalid_field', 'url');
  expectProblem(await patch({ url: null }), 422, 'invalid_field', 'url');
  expectProblem(await patch({ secret_sealed: 'x' }), 422, 'unknown_field', 'secret_sealed');
  expectProblem(await patch({ event_types: ['nope'] }), 422, 'invalid_field', 'event_types.0');
  expectProblem(await api('POST', `/v1/webhook_endpoints/${e.id}/rotate_secret`, { token: F.A.secret, body: { overlap_seconds: 604801 } }), 422, 'invalid_field', 'overlap_seconds');
  expectProblem(await api('POST', `/v1/webhook_endpoints/${e.id}/replay`, { token: F.A.secret, body: { since: '2026-01-02T00:00:00Z', until: '2026-01-01T00:00:00Z' } }), 422, 'invalid_field', 'until');
  expectProblem(await api('POST', `/v1/webhook_endpoints/${e.id}/replay`, { token: F.A.secret, body: { since: '2026-01-01T00:00:00Z' } }), 422, 'missing_field', 'until');
  expectProblem(await api('GET', `/v1/webhook_endpoints/${e.id}/deliveries?status=lost`, { token: F.A.secret }), 400, 'invalid_parameter', 'status');
  expectProblem(await api('GET', '/v1/webhook_endpoints/ses_01JBX5B8D0F3G6H9J2K4M7N9P1', { token: F.A.secret }), 400, 'invalid_parameter', 'id');
  expectProblem(await api('GET', '/v1/webhook_deliveries/whe_01JBX5B8D0F3G6H9J2K4M7N9P1', { token: F.A.secret }), 400, 'invalid_parameter', 'id');
});

test('update: fields change, description can be cleared, event types are deduplicated', async () => {
  const e = await newEndpoint(F.A.secret, { description: 'old' });
  const url = hookUrl();
  const u = expectStatus(await api('PATCH', `/v1/webhook_endpoints/${e.id}`, {
    token: F.A.secret,
    body: { url, description: null, event_types: ['session.ended', 'session.ended'], include_subtenants: true },
  }), 200);
  assert.equal(u.url, url);
  assert.equal(u.description, null);
  assert.deepEqual(u.event_types, ['session.ended']);
  assert.equal(u.include_subtenants, true);
  const same = expectStatus(await api('PATCH', `/v1/webhook_endpoints/${e.id}`, { token: F.A.secret, body: {} }), 200);
  assert.equal(same.url, url);
  assert.deepEqual(same.event_types, ['session.ended']);
});

test('disabling is manual; enabling clears the reason and the failure run', { skip: skipDb }, async () => {
  const e = await newEndpoint(F.A.secret);
  const patch = (body) => api('PATCH', `/v1/webhook_endpoints/${e.id}`, { token: F.A.secret, body });
  const off = expectStatus(await patch({ enabled: false }), 200);
  assert.equal(off.enabled, false);
  assert.equal(off.disabled_reason, 'manual');
  // As the dispatcher leaves an endpoint it disabled for failing too long.
  await sql("UPDATE webhook_endpoints SET disabled_reason = 'failing', failing_since = now() - interval '6 days' WHERE id = :'p1'", e.id);
  const on = expectStatus(await patch({ enabled: true }), 200);
  assert.equal(on.enabled, true);
  assert.equal(on.disabled_reason, null);
  assert.deepEqual(await sql("SELECT failing_since IS NULL FROM webhook_endpoints WHERE id = :'p1'", e.id), [['t']]);
  // Enabling an enabled endpoint does not reset a failure run in progress.
  await sql("UPDATE webhook_endpoints SET failing_since = now() - interval '1 day' WHERE id = :'p1'", e.id);
  expectStatus(await patch({ enabled: true }), 200);
  assert.deepEqual(await sql("SELECT failing_since IS NOT NULL FROM webhook_endpoints WHERE id = :'p1'", e.id), [['t']]);
});

test('rotate_secret: a new secret shown once, the previous one kept sealed for the overlap', { skip: skipDb }, async () => {
  const e = await newEndpoint(F.A.secret);
  const [[before]] = await sql("SELECT encode(secret_sealed, 'hex') FROM webhook_endpoints WHERE id = :'p1'", e.id);
  const r = expectStatus(await api('POST', `/v1/webhook_endpoints/${e.id}/rotate_secret`, { token: F.A.secret, body: { overlap_seconds: 3600 } }), 200);
  assert.match(r.secret, SECRET_RE);
  assert.notEqual(r.secret, e.secret);
  assert.equal(r.id, e.id);
  const left = Date.parse(r.previous_secret_expires_at) - Date.now();
  assert.ok(left > 3500e3 && left <= 3600e3 + 5e3, `overlap ends in an hour: ${r.previous_secret_expires_at}`);
  const [[prev, cur]] = await sql(
    "SELECT encode(previous_sealed, 'hex'), encode(secret_sealed, 'hex') FROM webhook_endpoints WHERE id = :'p1'", e.id);
  assert.equal(prev, before, 'the previous sealed secret is the one before the rotation');
  assert.notEqual(cur, before);
  const got = expectStatus(await api('GET', `/v1/webhook_endpoints/${e.id}`, { token: F.A.secret }), 200);
  assert.equal(got.secret, undefined);
  assert.equal(got.previous_secret_expires_at, r.previous_secret_expires_at);
  // No body: the default overlap of a day. 0: the previous secret stops at once.
  const d = expectStatus(await api('POST', `/v1/webhook_endpoints/${e.id}/rotate_secret`, { token: F.A.secret }), 200);
  const day = Date.parse(d.previous_secret_expires_at) - Date.now();
  assert.ok(day > 86390e3 && day <= 86405e3, d.previous_secret_expires_at);
  const z = expectStatus(await api('POST', `/v1/webhook_endpoints/${e.id}/rotate_secret`, { token: F.A.secret, body: { overlap_seconds: 0 } }), 200);
  assert.equal(z.previous_secret_expires_at, null);
});

test('test: a delivery of webhook.test to this endpoint only, even when it does not list the type', async () => {
  const e = await newEndpoint(F.A.secret, { event_types: ['session.ended'] });
  const other = await newEndpoint(F.A.secret);
  const d = await testDelivery(F.A.secret, e.id);
  assert.match(d.id, /^whd_/);
  assert.equal(d.object, 'webhook_delivery');
  assert.equal(d.endpoint_id, e.id);
  assert.equal(d.event_type, 'webhook.test');
  const full = expectStatus(await api('GET', `/v1/webhook_deliveries/${d.id}`, { token: F.A.secret }), 200);
  assert.equal(full.event.type, 'webhook.test');
  assert.equal(full.event.tenant_id, F.A.tenant.id);
  assert.equal(full.event.session_id, null);
  assert.equal(typeof full.event.data.message, 'string');
  assert.ok(Array.isArray(full.attempts));
  const listed = expectStatus(await api('GET', `/v1/webhook_endpoints/${e.id}/deliveries`, { token: F.A.secret }), 200);
  assert.deepEqual(listed.data.map((x) => x.id), [d.id]);
  const theirs = expectStatus(await api('GET', `/v1/webhook_endpoints/${other.id}/deliveries`, { token: F.A.secret }), 200);
  assert.ok(!theirs.data.some((x) => x.event_id === d.event_id), 'the other endpoint got no test event');
  expectStatus(await api('PATCH', `/v1/webhook_endpoints/${e.id}`, { token: F.A.secret, body: { enabled: false } }), 200);
  expectProblem(await api('POST', `/v1/webhook_endpoints/${e.id}/test`, { token: F.A.secret }), 409, 'endpoint_disabled');
});

test('replay: new deliveries of the range\'s events the endpoint receives, types filtered', async () => {
  const t = await newSubTenant(F.A.secret);
  const e = await newEndpoint(t.secret, { event_types: ['session.created', 'session.ended'] });
  const since = new Date(Date.now() - 1000).toISOString();
  const s = await newSession(t.secret);
  expectStatus(await api('POST', `/v1/sessions/${s.id}/end`, { token: t.secret }), 200);
  const until = new Date(Date.now() + 1000).toISOString();
  const first = expectStatus(await api('GET', `/v1/webhook_endpoints/${e.id}/deliveries`, { token: t.secret }), 200);
  assert.deepEqual(first.data.map((x) => x.event_type).sort(), ['session.created', 'session.ended']);
  const r = expectStatus(await api('POST', `/v1/webhook_endpoints/${e.id}/replay`, { token: t.secret, body: { since, until } }), 202);
  assert.deepEqual(r, { object: 'webhook_replay', endpoint_id: e.id, count: 2 });
  const all = expectStatus(await api('GET', `/v1/webhook_endpoints/${e.id}/deliveries`, { token: t.secret }), 200);
  assert.equal(all.data.length, 4);
  const ids = all.data.map((x) => x.id);
  assert.deepEqual(ids, [...ids].sort().reverse(), 'newest first');
  assert.deepEqual(all.data.slice(0, 2).map((x) => x.event_id).sort(), first.data.map((x) => x.event_id).sort());
  assert.ok(all.data.slice(0, 2).every((x) => x.status === 'pending' || x.attempt_count > 0));
  // A range before the session holds nothing; a page of one says there is more.
  const none = expectStatus(await api('POST', `/v1/webhook_endpoints/${e.id}/replay`, {
    token: t.secret, body: { since: '2020-01-01T00:00:00Z', until: '2020-01-02T00:00:00Z' } }), 202);
  assert.equal(none.count, 0);
  const page = expectStatus(await api('GET', `/v1/webhook_endpoints/${e.id}/deliveries?limit=1`, { token: t.secret }), 200);
  assert.equal(page.has_more, true);
  const next = expectStatus(await api('GET', `/v1/webhook_endpoints/${e.id}/deliveries?limit=3&starting_after=${page.data[0].id}`, { token: t.secret }), 200);
  assert.deepEqual([page.data[0].id, ...next.data.map((x) => x.id)], ids);
  // The reseller's endpoint that includes its sub-tenants replays the sub-tenant's events too,
  // and one that does not replays none of them.
  const withSubs = await newEndpoint(F.A.secret, { include_subtenants: true, event_types: ['session.ended'] });
  const without = await newEndpoint(F.A.secret, { event_types: ['session.ended'] });
  const rs = expectStatus(await api('POST', `/v1/webhook_endpoints/${withSubs.id}/replay`, { token: F.A.secret, body: { since, until } }), 202);
  assert.equal(rs.count, 1);
  const rw = expectStatus(await api('POST', `/v1/webhook_endpoints/${without.id}/replay`, { token: F.A.secret, body: { since, until } }), 202);
  assert.equal(rw.count, 0);
  expectStatus(await api('PATCH', `/v1/webhook_endpoints/${e.id}`, { token: t.secret, body: { enabled: false } }), 200);
  expectProblem(await api('POST', `/v1/webhook_endpoints/${e.id}/replay`, { token: t.secret, body: { since, until } }), 409, 'endpoint_disabled');
});

test('retry: a failed delivery is pending again and due now; a succeeded one is 409', { skip: skipDb }, async () => {
  const e = await newEndpoint(F.A.secret);
  const d = await testDelivery(F.A.secret, e.id);
  await sql("UPDATE webhook_deliveries SET status = 'failed', attempts = 10, next_attempt_at = now() + interval '1 day', locked_until = now() + interval '1 minute', last_error = 'refused' WHERE id = :'p1'", d.id);
  const r = expectStatus(await api('POST', `/v1/webhook_deliveries/${d.id}/retry`, { token: F.A.secret }), 200);
  assert.equal(r.id, d.id);
  assert.equal(r.status, 'pending');
  assert.ok(Date.parse(r.next_attempt_at) <= Date.now() + 1000, `due now: ${r.next_attempt_at}`);
  const [[lease]] = await sql("SELECT locked_until IS NULL FROM webhook_deliveries WHERE id = :'p1'", d.id);
  assert.equal(lease, 't', 'the lease is cleared');
  await sql("UPDATE webhook_deliveries SET status = 'succeeded', last_status = 200 WHERE id = :'p1'", d.id);
  expectProblem(await api('POST', `/v1/webhook_deliveries/${d.id}/retry`, { token: F.A.secret }), 409, 'delivery_succeeded');
  const [[status]] = await sql("SELECT status FROM webhook_deliveries WHERE id = :'p1'", d.id);
  assert.equal(status, 'succeeded');
});

test('delete: 204, then gone from every route, and its pending deliveries fail', async () => {
  const e = await newEndpoint(F.A.secret);
  const d = await testDelivery(F.A.secret, e.id);
  const res = await api('DELETE', `/v1/webhook_endpoints/${e.id}`, { token: F.A.secret });
  assert.equal(res.status, 204, res.text);
  expectProblem(await api('GET', `/v1/webhook_endpoints/${e.id}`, { token: F.A.secret }), 404, 'not_found');
  expectProblem(await api('DELETE', `/v1/webhook_endpoints/${e.id}`, { token: F.A.secret }), 404, 'not_found');
  expectProblem(await api('POST', `/v1/webhook_endpoints/${e.id}/test`, { token: F.A.secret }), 404, 'not_found');
  const list = expectStatus(await api('GET', '/v1/webhook_endpoints?limit=100', { token: F.A.secret }), 200);
  assert.ok(!list.data.some((x) => x.id === e.id));
  const after = expectStatus(await api('GET', `/v1/webhook_deliveries/${d.id}`, { token: F.A.secret }), 200);
  if (after.status !== 'succeeded') assert.equal(after.status, 'failed');
  expectProblem(await api('POST', `/v1/webhook_deliveries/${d.id}/retry`, { token: F.A.secret }), 409, after.status === 'succeeded' ? 'delivery_succeeded' : 'endpoint_disabled');
});

// Every route with an id, as another tenant would call it.
const ID_ROUTES = [
  { m: 'GET', p: '/v1/webhook_endpoints/{e}' },
  { m: 'PATCH', p: '/v1/webhook_endpoints/{e}', body: { description: 'pwned' } },
  { m: 'POST', p: '/v1/webhook_endpoints/{e}/rotate_secret' },
  { m: 'POST', p: '/v1/webhook_endpoints/{e}/test' },
  { m: 'POST', p: '/v1/webhook_endpoints/{e}/replay', body: { since: '2020-01-01T00:00:00Z', until: '2100-01-01T00:00:00Z' } },
  { m: 'GET', p: '/v1/webhook_endpoints/{e}/deliveries' },
  { m: 'GET', p: '/v1/webhook_deliveries/{d}' },
  { m: 'POST', p: '/v1/webhook_deliveries/{d}/retry' },
  { m: 'DELETE', p: '/v1/webhook_endpoints/{e}' },
];

test('isolation: another tenant\'s endpoint and delivery ids are 404 through every route', async () => {
  const e = await newEndpoint(F.A.secret, { description: 'victim' });
  const d = await testDelivery(F.A.secret, e.id);
  const fill = (p) => p.replace('{e}', e.id).replace('{d}', d.id);
  const callers = [
    ['another reseller', F.B.secret, undefined],
    ['the reseller\'s own sub-tenant', F.A1.secret, undefined],
    ['the reseller acting as its sub-tenant', F.A.secret, F.A1.tenant.id],
    ['the admin acting as another tenant', ADMIN_TOKEN, F.B.tenant.id],
  ];
  for (const [who, token, tenant] of callers) {
    for (const r of ID_ROUTES) {
      const res = await api(r.m, fill(r.p), { token, tenant, body: r.body });
      expectProblem(res, 404, 'not_found', undefined, `${who}: ${r.m} ${r.p}`);
    }
    const list = expectStatus(await api('GET', '/v1/webhook_endpoints?limit=100', { token, tenant }), 200);
    assert.ok(!list.data.some((x) => x.id === e.id), `${who} lists it`);
  }
  // An id of the right shape that names nothing is 404 too.
  expectProblem(await api('GET', `/v1/webhook_endpoints/${mutateId(e.id)}`, { token: F.A.secret }), 404, 'not_found');
  const got = expectStatus(await api('GET', `/v1/webhook_endpoints/${e.id}`, { token: F.A.secret }), 200);
  assert.equal(got.description, 'victim', 'nothing was changed');
  const again = expectStatus(await api('GET', `/v1/webhook_deliveries/${d.id}`, { token: F.A.secret }), 200);
  assert.equal(again.id, d.id);
});

test('a reseller reaches its sub-tenant\'s endpoints only with Cobrowse-Tenant; the admin must name one', async () => {
  const sub = await newSubTenant(F.A.secret);
  const e = await newEndpoint(F.A.secret, {}, sub.tenant.id);
  assert.equal(e.tenant_id, sub.tenant.id);
  expectProblem(await api('GET', `/v1/webhook_endpoints/${e.id}`, { token: F.A.secret }), 404, 'not_found');
  expectStatus(await api('GET', `/v1/webhook_endpoints/${e.id}`, { token: F.A.secret, tenant: sub.tenant.id }), 200);
  expectStatus(await api('GET', `/v1/webhook_endpoints/${e.id}`, { token: sub.secret }), 200);
  const d = await testDelivery(F.A.secret, e.id, sub.tenant.id);
  expectProblem(await api('GET', `/v1/webhook_deliveries/${d.id}`, { token: F.A.secret }), 404, 'not_found');
  expectStatus(await api('GET', `/v1/webhook_deliveries/${d.id}`, { token: sub.secret }), 200);
  expectProblem(await api('GET', '/v1/webhook_endpoints', { token: ADMIN_TOKEN }), 400, 'tenant_header_required');
  expectStatus(await api('GET', `/v1/webhook_endpoints/${e.id}`, { token: ADMIN_TOKEN, tenant: sub.tenant.id }), 200);
});

test('scopes: webhooks:read lists and reads, webhooks:write is needed to change anything', async () => {
  const e = await newEndpoint(F.C.secret);
  const d = await testDelivery(F.C.secret, e.id);
  const ro = await newKey(F.C.secret, null, { scopes: ['webhooks:read'] });
  const none = await newKey(F.C.secret, null, { scopes: ['sessions:read'] });
  expectStatus(await api('GET', '/v1/webhook_endpoints', { token: ro.secret }), 200);
  expectStatus(await api('GET', `/v1/webhook_endpoints/${e.id}/deliveries`, { token: ro.secret }), 200);
  expectStatus(await api('GET', `/v1/webhook_deliveries/${d.id}`, { token: ro.secret }), 200);
  const writes = [
    ['POST', '/v1/webhook_endpoints', { url: hookUrl() }],
    ['PATCH', `/v1/webhook_endpoints/${e.id}`, {}],
    ['DELETE', `/v1/webhook_endpoints/${e.id}`],
    ['POST', `/v1/webhook_endpoints/${e.id}/rotate_secret`],
    ['POST', `/v1/webhook_endpoints/${e.id}/test`],
    ['POST', `/v1/webhook_endpoints/${e.id}/replay`, { since: '2020-01-01T00:00:00Z', until: '2020-01-02T00:00:00Z' }],
    ['POST', `/v1/webhook_deliveries/${d.id}/retry`],
  ];
  for (const [m, p, body] of writes) {
    expectProblem(await api(m, p, { token: ro.secret, body }), 403, 'insufficient_scope', undefined, `${m} ${p}`);
  }
  expectProblem(await api('GET', '/v1/webhook_endpoints', { token: none.secret }), 403, 'insufficient_scope');
  expectProblem(await api('GET', `/v1/webhook_deliveries/${d.id}`, { token: none.secret }), 403, 'insufficient_scope');
  // A new key gets the webhook scopes by default from a key that has them.
  const dflt = expectStatus(await api('POST', '/v1/api_keys', { token: F.C.secret, body: { type: 'secret', name: uniq('k') } }), 201);
  assert.ok(dflt.scopes.includes('webhooks:read') && dflt.scopes.includes('webhooks:write'));
});

test('create is idempotent: a retry with the same Idempotency-Key replays the same endpoint and secret', async () => {
  const key = uniq('idem');
  const body = { url: hookUrl() };
  const a = expectStatus(await api('POST', '/v1/webhook_endpoints', { token: F.C.secret, body, idempotencyKey: key }), 201);
  const res = await api('POST', '/v1/webhook_endpoints', { token: F.C.secret, body, idempotencyKey: key });
  const b = expectStatus(res, 201);
  assert.equal(res.headers.get('idempotent-replayed'), 'true');
  assert.equal(b.id, a.id);
  assert.equal(b.secret, a.secret);
});

test('a tenant has at most 16 endpoints; deleted ones do not count', async () => {
  const t = await newSubTenant(F.C.secret);
  const made = [];
  for (let i = 0; i < 16; i++) made.push(await newEndpoint(t.secret));
  const over = await api('POST', '/v1/webhook_endpoints', { token: t.secret, body: { url: hookUrl() } });
  expectProblem(over, 409, 'endpoint_limit_reached');
  const list = expectStatus(await api('GET', '/v1/webhook_endpoints?limit=100', { token: t.secret }), 200);
  assert.equal(list.data.length, 16);
  assert.equal((await api('DELETE', `/v1/webhook_endpoints/${made[0].id}`, { token: t.secret })).status, 204);
  await newEndpoint(t.secret);
});

test('replay: another endpoint\'s test event is not replayed, the endpoint\'s own is', async () => {
  const t = await newSubTenant(F.C.secret);
  const x = await newEndpoint(t.secret);
  const y = await newEndpoint(t.secret);
  const since = new Date(Date.now() - 1000).toISOString();
  await testDelivery(t.secret, y.id);
  const until = new Date(Date.now() + 1000).toISOString();
  const rx = expectStatus(await api('POST', `/v1/webhook_endpoints/${x.id}/replay`, { token: t.secret, body: { since, until } }), 202);
  assert.equal(rx.count, 0);
  const ry = expectStatus(await api('POST', `/v1/webhook_endpoints/${y.id}/replay`, { token: t.secret, body: { since, until } }), 202);
  assert.equal(ry.count, 1);
});

test('http: URLs only on a server started with --webhook-allow-private', { skip: skipDb }, async () => {
  const srv = await startServer({ name: 'webhooks-api-private', flags: { 'webhook-allow-private': '127.0.0.1/32' } });
  try {
    const admin = { token: srv.adminToken };
    const t = expectStatus(await api('POST', `${srv.baseUrl}/v1/tenants`, { ...admin, body: { name: uniq('private') } }), 201);
    const post = (url) => api('POST', `${srv.baseUrl}/v1/webhook_endpoints`, { ...admin, tenant: t.id, body: { url } });
    const e = expectStatus(await post('http://127.0.0.1:9/hook'), 201);
    assert.equal(e.url, 'http://127.0.0.1:9/hook');
    assert.match(e.secret, SECRET_RE);
    expectStatus(await post('https://hooks.example.com/hook'), 201);
    expectProblem(await post('http://user:pw@127.0.0.1:9/hook'), 422, 'invalid_field', 'url');
    expectProblem(await post('ftp://127.0.0.1:9/hook'), 422, 'invalid_field', 'url');
    expectProblem(await post(`http://127.0.0.1:9/${'a'.repeat(2048)}`), 422, 'invalid_field', 'url');
  } finally {
    assertCleanExit(await srv.stop());
  }
});
