// The whole partner flow against a live server: admin -> reseller -> sub-tenant -> keys ->
// sessions -> agent tokens, tenant management and scopes. The cross-cutting conventions
// (idempotency, request ids, rate limits, health, metrics) are in conventions.test.mjs.
// See docs/rest-api.md.

import { test, before } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import {
  api, ADMIN_TOKEN, ALL_SCOPES, HIGH_LIMITS, expectStatus, expectProblem, assertProblemShape,
  uniq, decodeJwt, isoIn, sleep, newKey, newReseller, newSubTenant, newSession, show,
} from './lib/client.mjs';

const tag = randomBytes(4).toString('hex');
const ORIGIN = `https://www.acme-${tag}.example`;
const ORIGIN2 = `https://app.acme-${tag}.example`;
const OTHER_ORIGIN = `https://evil-${tag}.example`;

const SUB_LIMITS = {
  concurrent_sessions: 100, sessions_per_minute: 600, frames_per_second: 200,
  bytes_per_second: 1048576, agents_per_session: 5, api_requests_per_second: 1000,
};
const subSettings = () => ({
  name: uniq('acme'),
  branding: {
    product_name: 'Acme Cobrowse', logo_url: 'https://acme.example/logo.png',
    primary_color: '#0055ff', accent_color: '#ff8800',
    consent_text: 'Allow our agent to see this page?',
  },
  allowed_origins: [ORIGIN],
  masking: { selectors: ['.card-number', '#ssn'], mask_all_inputs: true },
  permissions: { remote_control: 'ask' },
  limits: { ...SUB_LIMITS },
});

const s = {}; // state shared by the steps below, filled in order

const isTime = (v, what) => {
  assert.equal(typeof v, 'string', `${what} must be a timestamp string, got ${JSON.stringify(v)}`);
  assert.ok(!Number.isNaN(Date.parse(v)), `${what} must parse as a date: ${v}`);
  return Date.parse(v);
};

async function listAll(token, path, tenant) {
  const res = await api('GET', path, { token, tenant });
  const body = expectStatus(res, 200, `GET ${path}`);
  assert.equal(body.object, 'list', 'list object');
  assert.ok(Array.isArray(body.data), 'list data');
  assert.equal(typeof body.has_more, 'boolean', 'list has_more');
  return body;
}

before(async () => {
  assert.ok(ADMIN_TOKEN.startsWith('adm_'), 'COBROWSE_ADMIN_TOKEN must be an adm_ token');
});

// ---------------------------------------------------------------------------------------------
// Admin -> reseller -> key

test('admin creates a reseller', async () => {
  const name = uniq('reseller');
  const res = await api('POST', '/v1/tenants', { token: ADMIN_TOKEN, body: { name, limits: { ...HIGH_LIMITS } } });
  const t = expectStatus(res, 201, 'create reseller');
  assert.match(t.id, /^ten_[A-Za-z0-9]+$/, 'tenant id');
  assert.equal(t.name, name);
  assert.equal(t.status, 'active');
  assert.equal(t.object, 'tenant');
  assert.equal(t.parent_id, null, 'a reseller has no parent');
  assert.deepEqual(t.limits, { ...HIGH_LIMITS }, 'limits echoed');
  const got = expectStatus(await api('GET', `/v1/tenants/${t.id}`, { token: ADMIN_TOKEN }), 200, 'admin reads reseller');
  assert.equal(got.id, t.id);
  assert.equal(got.name, name);
  s.reseller = t;
});

test('admin creates a full-scope secret key for the reseller via Cobrowse-Tenant', async () => {
  assert.ok(s.reseller, 'previous step failed');
  const res = await api('POST', '/v1/api_keys', {
    token: ADMIN_TOKEN, tenant: s.reseller.id,
    body: { type: 'secret', name: 'reseller backend', scopes: [...ALL_SCOPES] },
  });
  const k = expectStatus(res, 201, 'create reseller key');
  assert.match(k.secret, /^sk_[A-Za-z0-9_-]{52}$/, `secret key format: ${k.secret}`);
  assert.equal(k.prefix, 'sk_');
  assert.equal(k.last4, k.secret.slice(-4));
  assert.equal(k.tenant_id, s.reseller.id);
  assert.equal(k.type, 'secret');
  assert.equal(k.revoked_at, null);
  assert.equal(k.expires_at, null);
  assert.deepEqual([...k.scopes].sort(), [...ALL_SCOPES].sort());
  isTime(k.created_at, 'created_at');
  // The new key works and acts on the reseller.
  const me = expectStatus(await api('GET', `/v1/tenants/${s.reseller.id}`, { token: k.secret }), 200, 'reseller reads itself');
  assert.equal(me.id, s.reseller.id);
  s.resellerKey = k;
  s.rk = k.secret;
});

test('admin must name a tenant on key and session routes (400 tenant_header_required)', async () => {
  expectProblem(await api('GET', '/v1/sessions', { token: ADMIN_TOKEN }), 400, 'tenant_header_required');
  expectProblem(await api('GET', '/v1/api_keys', { token: ADMIN_TOKEN }), 400, 'tenant_header_required');
  expectProblem(await api('POST', '/v1/api_keys', { token: ADMIN_TOKEN, body: { type: 'secret', name: 'x', scopes: ['sessions:read'] } }), 400, 'tenant_header_required');
});

// ---------------------------------------------------------------------------------------------
// Reseller -> sub-tenant

test('reseller creates a sub-tenant with branding, origins, masking, permissions and limits', async () => {
  assert.ok(s.rk, 'previous step failed');
  const settings = subSettings();
  const res = await api('POST', '/v1/tenants', { token: s.rk, body: settings });
  const t = expectStatus(res, 201, 'create sub-tenant');
  assert.match(t.id, /^ten_/);
  for (const k of ['name', 'branding', 'allowed_origins', 'masking', 'permissions', 'limits']) {
    assert.deepEqual(t[k], settings[k], `${k} echoed on create`);
  }
  assert.equal(t.status, 'active');
  assert.equal(t.parent_id, s.reseller.id, 'parent_id is the reseller');
  const got = expectStatus(await api('GET', `/v1/tenants/${t.id}`, { token: s.rk }), 200, 'reseller reads sub-tenant');
  for (const k of ['name', 'branding', 'allowed_origins', 'masking', 'permissions', 'limits']) {
    assert.deepEqual(got[k], settings[k], `${k} read back`);
  }
  // The reseller lists it among its sub-tenants; the admin does not list it among resellers.
  const ids = [];
  let after;
  for (;;) {
    const q = `/v1/tenants?limit=100${after ? `&starting_after=${after}` : ''}`;
    const page = await listAll(s.rk, q);
    ids.push(...page.data.map((x) => x.id));
    if (!page.has_more) break;
    after = page.data.at(-1).id;
  }
  assert.ok(ids.includes(t.id), 'reseller lists its sub-tenant');
  assert.ok(!ids.includes(s.reseller.id), 'a reseller list of sub-tenants does not include itself');
  s.sub = t;
  s.subSettings = settings;
});

for (const field of Object.keys(HIGH_LIMITS)) {
  test(`sub-tenant limits.${field} above the parent's is 422 invalid_field`, async () => {
    assert.ok(s.rk && s.sub, 'previous step failed');
    const limits = { [field]: HIGH_LIMITS[field] + 1 };
    expectProblem(await api('POST', '/v1/tenants', { token: s.rk, body: { name: uniq('over'), limits } }),
      422, 'invalid_field', `limits.${field}`, 'create');
    expectProblem(await api('PATCH', `/v1/tenants/${s.sub.id}`, { token: s.rk, body: { limits } }),
      422, 'invalid_field', `limits.${field}`, 'patch');
    // Equal to the parent's is fine.
    const ok = await api('POST', '/v1/tenants', { token: s.rk, body: { name: uniq('eq'), limits: { [field]: HIGH_LIMITS[field] } } });
    expectStatus(ok, 201, 'limit equal to parent');
    assert.equal(ok.body.limits[field], HIGH_LIMITS[field]);
  });
}

test('reseller creates secret and publishable keys for the sub-tenant via Cobrowse-Tenant', async () => {
  assert.ok(s.sub, 'previous step failed');
  const sk = await newKey(s.rk, s.sub.id, { type: 'secret', scopes: [...ALL_SCOPES], name: 'acme backend' });
  assert.match(sk.secret, /^sk_[A-Za-z0-9_-]{52}$/);
  const pk = await newKey(s.rk, s.sub.id, { type: 'publishable', name: 'acme web' });
  assert.match(pk.secret, /^pk_[A-Za-z0-9_-]{52}$/);
  assert.equal(pk.prefix, 'pk_');
  assert.equal(pk.last4, pk.secret.slice(-4));
  assert.notEqual(sk.secret, pk.secret);
  // The sub-tenant key acts on the sub-tenant.
  const me = expectStatus(await api('GET', `/v1/tenants/${s.sub.id}`, { token: sk.secret }), 200);
  assert.equal(me.id, s.sub.id);
  s.subKey = sk; s.sk = sk.secret;
  s.pubKey = pk; s.pk = pk.secret;
});

test('a sub-tenant key cannot create tenants (403 forbidden)', async () => {
  assert.ok(s.sk, 'previous step failed');
  expectProblem(await api('POST', '/v1/tenants', { token: s.sk, body: { name: uniq('grandchild') } }), 403, 'forbidden');
});

// ---------------------------------------------------------------------------------------------
// Sessions

test('sub-tenant key creates a session with visitor metadata and custom fields', async () => {
  assert.ok(s.sk, 'previous step failed');
  const visitor = {
    external_id: `cust-${tag}`, name: 'Ada Lovelace', email: 'ada@example.com',
    custom: { plan: 'gold', seats: 12, vip: true },
  };
  const res = await api('POST', '/v1/sessions', {
    token: s.sk, body: { visitor, permissions: { remote_control: 'ask' }, expires_in_seconds: 3600 },
  });
  const ses = expectStatus(res, 201, 'create session');
  assert.match(ses.id, /^ses_[A-Za-z0-9]+$/, 'session id');
  assert.equal(ses.tenant_id, s.sub.id);
  assert.equal(ses.status, 'pending');
  assert.match(ses.join_code, /^[0-9]{6}$/, 'join code is 6 digits');
  assert.deepEqual(ses.visitor, visitor, 'visitor echoed');
  assert.equal(ses.permissions.remote_control, 'ask');
  const created = isTime(ses.created_at, 'created_at');
  assert.ok(Math.abs(created - Date.now()) < 60000, 'created_at is now');
  assert.ok(Math.abs(isTime(ses.expires_at, 'expires_at') - created - 3600000) <= 2000, 'expires_at = created_at + expires_in_seconds');
  assert.equal(ses.ended_at, null, 'a new session has not ended');
  assert.equal(typeof ses.relay_url, 'string');
  assert.ok(ses.relay_url.length > 0, 'relay_url');
  const vt = decodeJwt(ses.visitor_token);
  assert.equal(vt.payload.sid, ses.id, 'visitor token sid');
  // Read back: same data, and the visitor token is not shown again.
  const got = expectStatus(await api('GET', `/v1/sessions/${ses.id}`, { token: s.sk }), 200);
  assert.equal(got.id, ses.id);
  assert.deepEqual(got.visitor, visitor);
  assert.equal(got.join_code, ses.join_code);
  assert.ok(!('visitor_token' in got), 'visitor_token is shown only at creation');
  assert.ok(!res.text.includes(s.sk), 'the key never appears in a response');
  s.session = ses;
});

test('join code lookup finds the live session', async () => {
  assert.ok(s.session, 'previous step failed');
  const got = expectStatus(await api('GET', `/v1/sessions/by_code/${s.session.join_code}`, { token: s.sk }), 200);
  assert.equal(got.id, s.session.id);
  assert.equal(got.join_code, s.session.join_code);
});

test('agent tokens are JWTs with sid, role agent, aud, exp, nbf and jti', async () => {
  assert.ok(s.session, 'previous step failed');
  const body = { agent: { id: 'agent-42', name: 'Grace' }, permissions: { remote_control: 'ask' }, ttl_seconds: 600 };
  const before = Math.floor(Date.now() / 1000);
  const res = await api('POST', `/v1/sessions/${s.session.id}/agent_tokens`, { token: s.sk, body });
  const out = expectStatus(res, 201, 'agent token');
  assert.equal(out.session_id, s.session.id);
  assert.deepEqual(out.agent, body.agent);
  assert.equal(out.permissions.remote_control, 'ask');
  const { payload } = decodeJwt(out.token);
  assert.equal(payload.sid, s.session.id, 'sid');
  assert.equal(payload.role, 'agent', 'role');
  assert.ok(payload.aud !== undefined && payload.aud !== '' && payload.aud !== null, 'aud');
  for (const c of ['exp', 'nbf']) assert.ok(Number.isInteger(payload[c]), `${c} is an integer NumericDate`);
  assert.ok(Math.abs(payload.exp - (before + 600)) <= 10, `exp ~ now + ttl_seconds (exp=${payload.exp}, now=${before})`);
  assert.ok(payload.nbf <= before + 5 && payload.nbf >= before - 120, `nbf ~ now (nbf=${payload.nbf})`);
  assert.equal(typeof payload.jti, 'string');
  assert.ok(payload.jti.length >= 8, 'jti');
  assert.ok(Math.abs(isTime(out.expires_at, 'expires_at') / 1000 - payload.exp) <= 1, 'expires_at matches exp');
  assert.equal(typeof out.embed_url, 'string');
  assert.ok(out.embed_url.length > 0, 'embed_url');
  const out2 = expectStatus(await api('POST', `/v1/sessions/${s.session.id}/agent_tokens`, { token: s.sk, body }), 201);
  assert.notEqual(decodeJwt(out2.token).payload.jti, payload.jti, 'each token has its own jti');
});

test('CORS preflight for POST /v1/sessions answers 204 with the allow headers', async () => {
  const res = await api('OPTIONS', '/v1/sessions', {
    headers: {
      origin: ORIGIN, 'access-control-request-method': 'POST',
      'access-control-request-headers': 'authorization, content-type',
    },
    spec: false,
  });
  assert.equal(res.status, 204, `preflight: ${show(res)}`);
  const acao = res.headers.get('access-control-allow-origin');
  assert.ok(acao === ORIGIN || acao === '*', `Access-Control-Allow-Origin: ${acao}`);
  const methods = (res.headers.get('access-control-allow-methods') || '').toUpperCase();
  assert.ok(methods.split(/\s*,\s*/).includes('POST'), `Access-Control-Allow-Methods: ${methods}`);
  const hdrs = (res.headers.get('access-control-allow-headers') || '').toLowerCase().split(/\s*,\s*/);
  assert.ok(hdrs.includes('authorization'), `Access-Control-Allow-Headers lacks authorization: ${hdrs}`);
  assert.ok(hdrs.includes('content-type'), `Access-Control-Allow-Headers lacks content-type: ${hdrs}`);
  assert.ok(res.headers.get('x-request-id'), 'X-Request-Id on preflight');
});

test('publishable key creates a session from an allowed Origin', async () => {
  assert.ok(s.pk, 'previous step failed');
  const res = await api('POST', '/v1/sessions', {
    token: s.pk, headers: { origin: ORIGIN }, body: { visitor: { external_id: `web-${tag}` } },
  });
  const ses = expectStatus(res, 201, 'publishable create');
  assert.equal(res.headers.get('access-control-allow-origin'), ORIGIN, 'Access-Control-Allow-Origin echoes the allowed origin');
  assert.equal(ses.visitor.external_id, `web-${tag}`);
  decodeJwt(ses.visitor_token);
  // It belongs to the sub-tenant.
  const got = expectStatus(await api('GET', `/v1/sessions/${ses.id}`, { token: s.sk }), 200);
  assert.equal(got.id, ses.id);
});

test('publishable key from another Origin is 403 origin_not_allowed, without CORS allow', async () => {
  assert.ok(s.pk, 'previous step failed');
  const res = await api('POST', '/v1/sessions', { token: s.pk, headers: { origin: OTHER_ORIGIN }, body: {} });
  expectProblem(res, 403, 'origin_not_allowed');
  assert.notEqual(res.headers.get('access-control-allow-origin'), OTHER_ORIGIN, 'must not allow the foreign origin');
  // A near miss: same host with another scheme or port.
  expectProblem(await api('POST', '/v1/sessions', { token: s.pk, headers: { origin: ORIGIN.replace('https:', 'http:') }, body: {} }), 403, 'origin_not_allowed', undefined, 'http scheme');
  expectProblem(await api('POST', '/v1/sessions', { token: s.pk, headers: { origin: `${ORIGIN}:8443` }, body: {} }), 403, 'origin_not_allowed', undefined, 'other port');
});

test('publishable key without Origin is 403 origin_not_allowed', async () => {
  assert.ok(s.pk, 'previous step failed');
  expectProblem(await api('POST', '/v1/sessions', { token: s.pk, body: {} }), 403, 'origin_not_allowed');
});

test('list sessions: filters (status, external_id, created_after/before) and pagination', async () => {
  assert.ok(s.rk, 'previous step failed');
  const { secret: k } = await newSubTenant(s.rk, { name: uniq('lists') });
  const mk = (ext) => newSession(k, { visitor: { external_id: ext } });
  const a1 = await mk(`alice-${tag}`);
  const b1 = await mk(`bob-${tag}`);
  await sleep(1200);
  const T = new Date(Math.floor(Date.now() / 1000) * 1000).toISOString().replace('.000Z', 'Z');
  await sleep(1200);
  const a2 = await mk(`alice-${tag}`);
  const c1 = await mk(`carol-${tag}`);
  const a3 = await mk(`alice-${tag}`);
  const order = [a1, b1, a2, c1, a3].map((x) => x.id);
  expectStatus(await api('POST', `/v1/sessions/${c1.id}/end`, { token: k }), 200, 'end c1');

  const ids = async (q) => {
    const body = await listAll(k, `/v1/sessions?limit=100&${q}`);
    assert.equal(body.has_more, false, `has_more for ${q}`);
    return body.data.map((x) => x.id).sort();
  };
  const set = (...xs) => xs.map((x) => x.id).sort();
  assert.deepEqual(await ids(`external_id=alice-${tag}`), set(a1, a2, a3), 'external_id');
  assert.deepEqual(await ids('status=ended'), set(c1), 'status=ended');
  assert.deepEqual(await ids('status=pending'), set(a1, b1, a2, a3), 'status=pending');
  assert.deepEqual(await ids('status=active'), [], 'status=active');
  assert.deepEqual(await ids(`created_after=${encodeURIComponent(T)}`), set(a2, c1, a3), 'created_after');
  assert.deepEqual(await ids(`created_before=${encodeURIComponent(T)}`), set(a1, b1), 'created_before');
  assert.deepEqual(await ids(`external_id=alice-${tag}&status=pending&created_after=${encodeURIComponent(T)}`), set(a2, a3), 'combined');
  assert.deepEqual(await ids(`external_id=nobody-${tag}`), [], 'no match');

  // Pagination, limit=2: pages of 2, 2, 1; has_more true, true, false; no duplicates, no gaps,
  // one consistent order by creation.
  const pages = [];
  let after;
  for (let i = 0; i < 10; i++) {
    const body = await listAll(k, `/v1/sessions?limit=2${after ? `&starting_after=${after}` : ''}`);
    pages.push(body);
    if (!body.has_more) break;
    after = body.data.at(-1).id;
  }
  assert.deepEqual(pages.map((p) => p.data.length), [2, 2, 1], 'page sizes');
  assert.deepEqual(pages.map((p) => p.has_more), [true, true, false], 'has_more per page');
  const seen = pages.flatMap((p) => p.data.map((x) => x.id));
  assert.equal(new Set(seen).size, seen.length, 'no duplicates');
  assert.deepEqual([...seen].sort(), [...order].sort(), 'no gaps');
  assert.deepEqual(seen, [...order].reverse(), 'newest first');

  // Pagination with a filter.
  const p1 = await listAll(k, `/v1/sessions?limit=2&external_id=alice-${tag}`);
  assert.equal(p1.data.length, 2);
  assert.equal(p1.has_more, true);
  const p2 = await listAll(k, `/v1/sessions?limit=2&external_id=alice-${tag}&starting_after=${p1.data[1].id}`);
  assert.equal(p2.data.length, 1);
  assert.equal(p2.has_more, false);
  assert.deepEqual([...p1.data, ...p2.data].map((x) => x.id).sort(), set(a1, a2, a3));
});

test('ending a session: status ended, ended_at set, by_code 404, agent token 409 session_ended', async () => {
  assert.ok(s.session, 'previous step failed');
  const id = s.session.id;
  const res = await api('POST', `/v1/sessions/${id}/end`, { token: s.sk });
  const ended = expectStatus(res, 200, 'end');
  assert.equal(ended.id, id);
  assert.equal(ended.status, 'ended');
  assert.ok(isTime(ended.ended_at, 'ended_at') >= Date.parse(s.session.created_at) - 1000, 'ended_at after created_at');
  const got = expectStatus(await api('GET', `/v1/sessions/${id}`, { token: s.sk }), 200);
  assert.equal(got.status, 'ended');
  assert.equal(got.ended_at, ended.ended_at);
  expectProblem(await api('GET', `/v1/sessions/by_code/${s.session.join_code}`, { token: s.sk }), 404, 'not_found', undefined, 'by_code of ended session');
  expectProblem(await api('POST', `/v1/sessions/${id}/agent_tokens`, { token: s.sk, body: { agent: { id: 'a1', name: 'A' } } }),
    409, 'session_ended', undefined, 'agent token for ended session');
});

// ---------------------------------------------------------------------------------------------
// Tenant management

test('PATCH a tenant merges nested objects field by field', async () => {
  assert.ok(s.sub, 'previous step failed');
  const before = s.subSettings;
  const res = await api('PATCH', `/v1/tenants/${s.sub.id}`, {
    token: s.rk, body: { branding: { primary_color: '#111111' }, masking: { mask_all_inputs: false } },
  });
  const t = expectStatus(res, 200, 'patch');
  const want = {
    ...before,
    branding: { ...before.branding, primary_color: '#111111' },
    masking: { ...before.masking, mask_all_inputs: false },
  };
  for (const k of ['name', 'branding', 'allowed_origins', 'masking', 'permissions', 'limits']) {
    assert.deepEqual(t[k], want[k], `${k} after PATCH`);
  }
  const got = expectStatus(await api('GET', `/v1/tenants/${s.sub.id}`, { token: s.rk }), 200);
  for (const k of ['name', 'branding', 'allowed_origins', 'masking', 'permissions', 'limits']) {
    assert.deepEqual(got[k], want[k], `${k} read back after PATCH`);
  }
  // Arrays are replaced, not merged; lower limits are accepted from the parent.
  const t2 = expectStatus(await api('PATCH', `/v1/tenants/${s.sub.id}`, {
    token: s.rk, body: { allowed_origins: [ORIGIN, ORIGIN2], limits: { agents_per_session: 3 } },
  }), 200, 'patch origins and a limit');
  assert.deepEqual(t2.allowed_origins, [ORIGIN, ORIGIN2]);
  assert.deepEqual(t2.limits, { ...before.limits, agents_per_session: 3 });
  assert.deepEqual(t2.branding, want.branding, 'branding untouched by an unrelated PATCH');
  s.subSettings = { ...want, allowed_origins: [ORIGIN, ORIGIN2], limits: t2.limits };
  // The publishable key now works from the second origin too.
  const r = await api('POST', '/v1/sessions', { token: s.pk, headers: { origin: ORIGIN2 }, body: {} });
  expectStatus(r, 201, 'publishable key from the added origin');
  assert.equal(r.headers.get('access-control-allow-origin'), ORIGIN2);
});

test('a tenant PATCHes its own settings but not its own limits', async () => {
  assert.ok(s.sk, 'previous step failed');
  const t = expectStatus(await api('PATCH', `/v1/tenants/${s.sub.id}`, {
    token: s.sk, body: { branding: { product_name: 'Acme Help' } },
  }), 200, 'own patch');
  assert.equal(t.branding.product_name, 'Acme Help');
  assert.equal(t.branding.logo_url, s.subSettings.branding.logo_url);
  expectProblem(await api('PATCH', `/v1/tenants/${s.sub.id}`, { token: s.sk, body: { limits: { concurrent_sessions: 1 } } }),
    403, 'forbidden', undefined, 'own limits');
  const got = expectStatus(await api('GET', `/v1/tenants/${s.sub.id}`, { token: s.sk }), 200);
  assert.equal(got.limits.concurrent_sessions, s.subSettings.limits.concurrent_sessions, 'limits unchanged');
});

test('suspend a sub-tenant: its keys get 403 tenant_suspended; reactivate restores them', async () => {
  assert.ok(s.sk && s.pk, 'previous step failed');
  const t = expectStatus(await api('POST', `/v1/tenants/${s.sub.id}/suspend`, { token: s.rk }), 200, 'suspend');
  assert.equal(t.status, 'suspended');
  expectProblem(await api('GET', '/v1/sessions', { token: s.sk }), 403, 'tenant_suspended', undefined, 'secret key');
  expectProblem(await api('POST', '/v1/sessions', { token: s.sk, body: {} }), 403, 'tenant_suspended', undefined, 'secret key create');
  expectProblem(await api('POST', '/v1/sessions', { token: s.pk, headers: { origin: ORIGIN }, body: {} }), 403, 'tenant_suspended', undefined, 'publishable key');
  expectProblem(await api('GET', '/v1/sessions', { token: s.rk, tenant: s.sub.id }), 403, 'tenant_suspended', undefined, 'reseller acting as the suspended tenant');
  // The reseller itself is not suspended and still sees the sub-tenant.
  const got = expectStatus(await api('GET', `/v1/tenants/${s.sub.id}`, { token: s.rk }), 200);
  assert.equal(got.status, 'suspended');
  const r = expectStatus(await api('POST', `/v1/tenants/${s.sub.id}/reactivate`, { token: s.rk }), 200, 'reactivate');
  assert.equal(r.status, 'active');
  expectStatus(await api('GET', '/v1/sessions', { token: s.sk }), 200, 'secret key after reactivate');
  expectStatus(await api('POST', '/v1/sessions', { token: s.pk, headers: { origin: ORIGIN }, body: {} }), 201, 'publishable key after reactivate');
});

test('a sub-tenant cannot suspend itself (403 forbidden)', async () => {
  assert.ok(s.sk, 'previous step failed');
  expectProblem(await api('POST', `/v1/tenants/${s.sub.id}/suspend`, { token: s.sk }), 403, 'forbidden');
  expectStatus(await api('GET', '/v1/sessions', { token: s.sk }), 200, 'still active');
});

test('suspending a reseller suspends its sub-tenants\' keys too', async () => {
  const r = await newReseller();
  const c = await newSubTenant(r.secret);
  const t = expectStatus(await api('POST', `/v1/tenants/${r.tenant.id}/suspend`, { token: ADMIN_TOKEN }), 200, 'admin suspends reseller');
  assert.equal(t.status, 'suspended');
  expectProblem(await api('GET', '/v1/tenants', { token: r.secret }), 403, 'tenant_suspended', undefined, 'reseller key');
  expectProblem(await api('GET', '/v1/sessions', { token: c.secret }), 403, 'tenant_suspended', undefined, 'sub-tenant key');
  expectStatus(await api('POST', `/v1/tenants/${r.tenant.id}/reactivate`, { token: ADMIN_TOKEN }), 200, 'reactivate');
  expectStatus(await api('GET', '/v1/tenants', { token: r.secret }), 200, 'reseller key after reactivate');
  expectStatus(await api('GET', '/v1/sessions', { token: c.secret }), 200, 'sub-tenant key after reactivate');
});

test('delete a sub-tenant: then 404, its keys 401', async () => {
  assert.ok(s.rk, 'previous step failed');
  const c = await newSubTenant(s.rk);
  await newSession(c.secret, {});
  const res = await api('DELETE', `/v1/tenants/${c.tenant.id}`, { token: s.rk });
  assert.deepEqual(expectStatus(res, 200, 'delete'), { id: c.tenant.id, object: 'tenant', deleted: true });
  expectProblem(await api('GET', `/v1/tenants/${c.tenant.id}`, { token: s.rk }), 404, 'not_found', undefined, 'GET deleted');
  expectProblem(await api('DELETE', `/v1/tenants/${c.tenant.id}`, { token: s.rk }), 404, 'not_found', undefined, 'DELETE again');
  expectProblem(await api('GET', '/v1/sessions', { token: c.secret }), 401, 'invalid_api_key', undefined, 'key of deleted tenant');
  expectProblem(await api('GET', '/v1/sessions', { token: s.rk, tenant: c.tenant.id }), 404, 'not_found', undefined, 'Cobrowse-Tenant naming a deleted tenant');
});

test('delete a reseller: its sub-tenants go too and their keys get 401', async () => {
  const r = await newReseller();
  const c = await newSubTenant(r.secret);
  const res = await api('DELETE', `/v1/tenants/${r.tenant.id}`, { token: ADMIN_TOKEN });
  assert.deepEqual(expectStatus(res, 200, 'delete'), { id: r.tenant.id, object: 'tenant', deleted: true });
  expectProblem(await api('GET', `/v1/tenants/${r.tenant.id}`, { token: ADMIN_TOKEN }), 404, 'not_found', undefined, 'reseller');
  expectProblem(await api('GET', `/v1/tenants/${c.tenant.id}`, { token: ADMIN_TOKEN }), 404, 'not_found', undefined, 'sub-tenant');
  expectProblem(await api('GET', '/v1/tenants', { token: r.secret }), 401, 'invalid_api_key', undefined, 'reseller key');
  expectProblem(await api('GET', '/v1/sessions', { token: c.secret }), 401, 'invalid_api_key', undefined, 'sub-tenant key');
});

test('a sub-tenant cannot delete itself (403 forbidden)', async () => {
  assert.ok(s.sk, 'previous step failed');
  expectProblem(await api('DELETE', `/v1/tenants/${s.sub.id}`, { token: s.sk }), 403, 'forbidden');
  expectStatus(await api('GET', `/v1/tenants/${s.sub.id}`, { token: s.sk }), 200, 'still there');
});

// ---------------------------------------------------------------------------------------------
// Keys

test('key listing shows prefix and last4 and never the secret', async () => {
  assert.ok(s.subKey && s.pubKey, 'previous step failed');
  const res = await api('GET', '/v1/api_keys?limit=100', { token: s.rk, tenant: s.sub.id });
  const body = expectStatus(res, 200, 'list keys');
  assert.equal(body.object, 'list');
  for (const k of [s.subKey, s.pubKey]) {
    const item = body.data.find((x) => x.id === k.id);
    assert.ok(item, `key ${k.id} listed`);
    assert.equal(item.prefix, k.secret.slice(0, 3));
    assert.equal(item.last4, k.secret.slice(-4));
    assert.ok(!('secret' in item), 'no secret in a listed key');
    isTime(item.created_at, 'created_at');
    for (const f of ['last_used_at', 'expires_at', 'revoked_at']) assert.ok(f in item, `${f} is listed`);
    assert.equal(item.revoked_at, null);
    assert.ok(!res.text.includes(k.secret), 'the secret appears nowhere in the list');
    assert.ok(!res.text.includes(k.secret.slice(3, -4)), 'no part of the secret body is shown');
  }
  // The sub-tenant's own keys: used ones have last_used_at.
  const sk = body.data.find((x) => x.id === s.subKey.id);
  isTime(sk.last_used_at, 'last_used_at of a used key');
  const one = await api('GET', `/v1/api_keys/${s.subKey.id}`, { token: s.sk });
  const k1 = expectStatus(one, 200, 'get key');
  assert.equal(k1.id, s.subKey.id);
  assert.equal(k1.last4, s.subKey.secret.slice(-4));
  assert.ok(!('secret' in k1), 'no secret on GET');
  assert.ok(!one.text.includes(s.subKey.secret), 'secret not in GET answer');
  // The reseller's list of its own keys does not include the sub-tenant's.
  const own = expectStatus(await api('GET', '/v1/api_keys?limit=100', { token: s.rk }), 200);
  assert.ok(own.data.some((x) => x.id === s.resellerKey.id), 'reseller lists its own key');
  assert.ok(!own.data.some((x) => x.id === s.subKey.id), 'reseller\'s own list excludes sub-tenant keys');
});

test('revoke a key: revoked_at set, then 401 invalid_api_key', async () => {
  assert.ok(s.sub, 'previous step failed');
  const k = await newKey(s.rk, s.sub.id, { scopes: ['sessions:read'] });
  expectStatus(await api('GET', '/v1/sessions', { token: k.secret }), 200, 'before revoke');
  const r = expectStatus(await api('POST', `/v1/api_keys/${k.id}/revoke`, { token: s.rk, tenant: s.sub.id }), 200, 'revoke');
  assert.equal(r.id, k.id);
  isTime(r.revoked_at, 'revoked_at');
  expectProblem(await api('GET', '/v1/sessions', { token: k.secret }), 401, 'invalid_api_key', undefined, 'revoked key');
  const got = expectStatus(await api('GET', `/v1/api_keys/${k.id}`, { token: s.sk }), 200, 'get revoked key');
  assert.equal(got.revoked_at, r.revoked_at);
});

test('an expired key gets 401 invalid_api_key', async () => {
  assert.ok(s.sub, 'previous step failed');
  const expires_at = isoIn(3000);
  const k = await newKey(s.rk, s.sub.id, { scopes: ['sessions:read'], expires_at });
  assert.equal(Date.parse(k.expires_at), Date.parse(expires_at), 'expires_at echoed');
  expectStatus(await api('GET', '/v1/sessions', { token: k.secret }), 200, 'before expiry');
  await sleep(Math.max(0, Date.parse(expires_at) - Date.now()) + 1200);
  expectProblem(await api('GET', '/v1/sessions', { token: k.secret }), 401, 'invalid_api_key', undefined, 'after expiry');
});

test('missing scope is 403 insufficient_scope', async () => {
  assert.ok(s.sub, 'previous step failed');
  const ro = await newKey(s.rk, s.sub.id, { scopes: ['sessions:read'] });
  expectStatus(await api('GET', '/v1/sessions', { token: ro.secret }), 200, 'has sessions:read');
  expectProblem(await api('POST', '/v1/sessions', { token: ro.secret, body: {} }), 403, 'insufficient_scope', undefined, 'sessions:write');
  expectProblem(await api('GET', '/v1/api_keys', { token: ro.secret }), 403, 'insufficient_scope', undefined, 'api_keys:read');
  expectProblem(await api('GET', `/v1/tenants/${s.sub.id}`, { token: ro.secret }), 403, 'insufficient_scope', undefined, 'tenants:read');
  const ses = await newSession(s.sk, {});
  expectProblem(await api('POST', `/v1/sessions/${ses.id}/end`, { token: ro.secret }), 403, 'insufficient_scope', undefined, 'end needs sessions:write');
  expectProblem(await api('POST', `/v1/sessions/${ses.id}/agent_tokens`, { token: ro.secret, body: { agent: { id: 'a', name: 'A' } } }), 403, 'insufficient_scope', undefined, 'agent_tokens:write');
  const rr = await newKey(s.rk, null, { scopes: ['tenants:read'] });
  expectStatus(await api('GET', '/v1/tenants', { token: rr.secret }), 200, 'has tenants:read');
  expectProblem(await api('POST', '/v1/tenants', { token: rr.secret, body: { name: uniq('x') } }), 403, 'insufficient_scope', undefined, 'tenants:write');
  expectProblem(await api('POST', `/v1/tenants/${s.sub.id}/suspend`, { token: rr.secret }), 403, 'insufficient_scope', undefined, 'suspend needs tenants:write');
});

test('a key cannot create a key with scopes it lacks (422)', async () => {
  assert.ok(s.sub, 'previous step failed');
  const k = await newKey(s.rk, s.sub.id, { scopes: ['api_keys:write', 'sessions:read'] });
  const ok = await newKey(k.secret, null, { scopes: ['sessions:read'] });
  assert.deepEqual(ok.scopes, ['sessions:read']);
  const res = await api('POST', '/v1/api_keys', { token: k.secret, body: { type: 'secret', name: 'escalate', scopes: ['sessions:read', 'sessions:write'] } });
  assert.equal(res.status, 422, `escalation: ${show(res)}`);
  assertProblemShape(res);
  assert.equal(res.body.code, 'invalid_field', `code: ${show(res)}`);
  assert.match(String(res.body.field), /^scopes/, `field: ${show(res)}`);
  // The admin-created reseller key cannot mint a key for the sub-tenant with more than it has.
  const rlim = await newKey(s.rk, null, { scopes: ['api_keys:write', 'sessions:read'] });
  const r2 = await api('POST', '/v1/api_keys', { token: rlim.secret, tenant: s.sub.id, body: { type: 'secret', name: 'x', scopes: ['tenants:write'] } });
  assert.equal(r2.status, 422, `escalation via Cobrowse-Tenant: ${show(r2)}`);
});
