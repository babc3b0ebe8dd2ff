// Tenant isolation matrix. Two resellers A and B; A has sub-tenants A1 and A2, B has B1. Each
// tenant owns a key and a session. Every route that takes an id is tried by keys that must not
// see the object; the answer must be 404 not_found (never 403, never 2xx, no data). The matrix
// is data: each case is its own test. Destructive cases run last, and a final test checks that
// no victim object was changed. See docs/rest-api.md, "Authentication and acting tenant".

import { test, before } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import {
  api, ADMIN_TOKEN, expectStatus, expectProblem, uniq, isoIn, sleep, mutateId,
  newKey, newReseller, newSubTenant, show,
} from './lib/client.mjs';

const tag = randomBytes(4).toString('hex');
const ORIGIN = `https://shop-${tag}.example`;

// Routes. `p` is a template over {tenant}, {key}, {session}, {code}; `on` says which kind of
// object the id names; `destructive` routes run after all others.
const ROUTES = [
  { m: 'POST', p: '/v1/tenants', body: () => ({ name: uniq('iso-new') }) },
  { m: 'GET', p: '/v1/tenants' },
  { m: 'GET', p: '/v1/tenants/{tenant}', on: 'tenant' },
  { m: 'PATCH', p: '/v1/tenants/{tenant}', on: 'tenant', body: () => ({ branding: { product_name: 'pwned' } }) },
  { m: 'POST', p: '/v1/api_keys', body: () => ({ type: 'secret', name: uniq('iso-key'), scopes: ['sessions:read'] }) },
  { m: 'GET', p: '/v1/api_keys' },
  { m: 'GET', p: '/v1/api_keys/{key}', on: 'key' },
  { m: 'POST', p: '/v1/sessions', body: () => ({ visitor: { external_id: 'pwned' } }) },
  { m: 'GET', p: '/v1/sessions' },
  { m: 'GET', p: '/v1/sessions/{session}', on: 'session' },
  { m: 'GET', p: '/v1/sessions/by_code/{code}', on: 'session' },
  { m: 'POST', p: '/v1/sessions/{session}/agent_tokens', on: 'session', body: () => ({ agent: { id: 'intruder', name: 'Intruder' } }) },
  { m: 'POST', p: '/v1/api_keys/{key}/revoke', on: 'key', destructive: 1 },
  { m: 'POST', p: '/v1/sessions/{session}/end', on: 'session', destructive: 2 },
  { m: 'POST', p: '/v1/tenants/{tenant}/suspend', on: 'tenant', destructive: 3 },
  { m: 'POST', p: '/v1/tenants/{tenant}/reactivate', on: 'tenant', destructive: 4 },
  { m: 'DELETE', p: '/v1/tenants/{tenant}', on: 'tenant', destructive: 5 },
];
const ID_ROUTES = ROUTES.filter((r) => r.on);
const KEY_SESSION_ROUTES = ID_ROUTES.filter((r) => r.on !== 'tenant');
const COLLECTION_ROUTES = ROUTES.filter((r) => !r.on);

function fill(p, objs) {
  return p
    .replace('{tenant}', objs.tenant.id)
    .replace('{key}', objs.key.id)
    .replace('{session}', objs.session.id)
    .replace('{code}', objs.session.join_code);
}
const label = (r) => `${r.m} ${r.p}`;

// Fixtures, filled by before().
const F = {};
let expiresAt = 0;

before(async () => {
  // The expiring key first, so its expiry has passed by the time its cases run.
  F.A = await newReseller();
  F.B = await newReseller();
  F.A1 = await newSubTenant(F.A.secret, { allowed_origins: [ORIGIN] });
  F.A2 = await newSubTenant(F.A.secret, { allowed_origins: [ORIGIN] });
  F.B1 = await newSubTenant(F.B.secret, { allowed_origins: [ORIGIN] });
  const exp = isoIn(3000);
  F.expired = await newKey(F.A.secret, F.A1.tenant.id, { expires_at: exp });
  expiresAt = Date.parse(exp);

  const codes = new Set();
  for (const name of ['A', 'B', 'A1', 'A2', 'B1']) {
    const t = F[name];
    t.name = name;
    t.extraKey = await newKey(t.secret, null, { scopes: ['sessions:read'], name: uniq(`iso-${name}-key`) });
    // Join codes must differ across fixtures so a by_code case cannot hit the caller's own
    // session by coincidence.
    for (;;) {
      const res = await api('POST', '/v1/sessions', {
        token: t.secret, body: { visitor: { external_id: uniq(`iso-${name}-visitor`), name: `Visitor ${name}` } },
      });
      const ses = expectStatus(res, 201, `session for ${name}`);
      if (!codes.has(ses.join_code)) { codes.add(ses.join_code); t.session = ses; break; }
      expectStatus(await api('POST', `/v1/sessions/${ses.id}/end`, { token: t.secret }), 200);
    }
    t.objs = { tenant: t.tenant, key: t.extraKey, session: t.session };
    t.markers = [t.tenant.name, t.extraKey.name, t.session.visitor.external_id];
  }
  F.pk = await newKey(F.A.secret, F.A1.tenant.id, { type: 'publishable' });
  F.revoked = await newKey(F.A.secret, F.A1.tenant.id, { scopes: ['sessions:read'] });
  expectStatus(await api('GET', '/v1/sessions', { token: F.revoked.secret }), 200, 'revocable key works first');
  expectStatus(await api('POST', `/v1/api_keys/${F.revoked.id}/revoke`, { token: F.A1.secret }), 200, 'revoke');
  F.unknownTenant = mutateId(F.A1.tenant.id);
});

// ---------------------------------------------------------------------------------------------
// Positive controls: the owners do see their objects, so the 404s below mean isolation.

const CONTROLS = [
  // [who, token(), tenant header(), whose objects]
  ['A1 key', () => F.A1.secret, () => undefined, 'A1'],
  ['A2 key', () => F.A2.secret, () => undefined, 'A2'],
  ['B1 key', () => F.B1.secret, () => undefined, 'B1'],
  ['A key', () => F.A.secret, () => undefined, 'A'],
  ['B key', () => F.B.secret, () => undefined, 'B'],
  ['A key as A1 (Cobrowse-Tenant)', () => F.A.secret, () => F.A1.tenant.id, 'A1'],
  ['A key as A2 (Cobrowse-Tenant)', () => F.A.secret, () => F.A2.tenant.id, 'A2'],
  ['admin as B1 (Cobrowse-Tenant)', () => ADMIN_TOKEN, () => F.B1.tenant.id, 'B1'],
];
for (const [who, tok, hdr, whose] of CONTROLS) {
  for (const r of ID_ROUTES.filter((x) => !x.destructive && x.m === 'GET')) {
    test(`control: ${who} -> ${label(r)} on ${whose}'s object -> 200`, async () => {
      const o = F[whose];
      const res = await api(r.m, fill(r.p, o.objs), { token: tok(), tenant: hdr() });
      const body = expectStatus(res, 200);
      const want = { tenant: o.tenant.id, key: o.extraKey.id, session: o.session.id }[r.on];
      assert.equal(body.id, want, 'the right object');
    });
  }
}
test('control: a reseller reads its sub-tenant by id without Cobrowse-Tenant', async () => {
  const body = expectStatus(await api('GET', `/v1/tenants/${F.A1.tenant.id}`, { token: F.A.secret }), 200);
  assert.equal(body.id, F.A1.tenant.id);
});
test('control: A1 issues an agent token for its own session', async () => {
  expectStatus(await api('POST', `/v1/sessions/${F.A1.session.id}/agent_tokens`, {
    token: F.A1.secret, body: { agent: { id: 'ok', name: 'Ok' } },
  }), 201);
});

// ---------------------------------------------------------------------------------------------
// Lists show only the caller's objects.

async function listIds(token, path, tenant) {
  const ids = [];
  let after;
  for (let i = 0; i < 20; i++) {
    const sep = path.includes('?') ? '&' : '?';
    const res = await api('GET', `${path}${sep}limit=100${after ? `&starting_after=${after}` : ''}`, { token, tenant });
    const body = expectStatus(res, 200, `list ${path}`);
    ids.push(...body.data.map((x) => x.id));
    if (!body.has_more) return ids;
    after = body.data.at(-1).id;
  }
  throw new Error('too many pages');
}
const sorted = (xs) => [...xs].sort();

test('list: A lists exactly its sub-tenants A1 and A2', async () => {
  assert.deepEqual(sorted(await listIds(F.A.secret, '/v1/tenants')), sorted([F.A1.tenant.id, F.A2.tenant.id]));
});
test('list: A1 lists no tenant of A, A2, B or B1', async () => {
  const ids = await listIds(F.A1.secret, '/v1/tenants');
  for (const n of ['A', 'A2', 'B', 'B1']) assert.ok(!ids.includes(F[n].tenant.id), `A1 must not list ${n}`);
});
test('list: A lists exactly its own keys', async () => {
  assert.deepEqual(sorted(await listIds(F.A.secret, '/v1/api_keys')), sorted([F.A.key.id, F.A.extraKey.id]));
});
test('list: A1 lists exactly its own keys (A key as A1)', async () => {
  const want = sorted([F.A1.key.id, F.A1.extraKey.id, F.expired.id, F.pk.id, F.revoked.id]);
  assert.deepEqual(sorted(await listIds(F.A.secret, '/v1/api_keys', F.A1.tenant.id)), want);
  assert.deepEqual(sorted(await listIds(F.A1.secret, '/v1/api_keys')), want);
});
test('list: A lists exactly its own sessions, not its sub-tenants\'', async () => {
  assert.deepEqual(await listIds(F.A.secret, '/v1/sessions'), [F.A.session.id]);
});
test('list: A1 lists exactly its own sessions', async () => {
  assert.deepEqual(await listIds(F.A1.secret, '/v1/sessions'), [F.A1.session.id]);
  assert.deepEqual(await listIds(F.A.secret, '/v1/sessions', F.A1.tenant.id), [F.A1.session.id]);
});
test('list: B1 lists exactly its own sessions', async () => {
  assert.deepEqual(await listIds(F.B1.secret, '/v1/sessions'), [F.B1.session.id]);
});
test('list: starting_after naming another tenant\'s object does not reveal it', async () => {
  const res = await api('GET', `/v1/sessions?starting_after=${F.B1.session.id}`, { token: F.A1.secret });
  // Either refused or treated as unknown; it must never list B1's data.
  assert.ok(res.status === 200 || res.status === 400 || res.status === 404, `status: ${show(res)}`);
  for (const m of F.B1.markers) assert.ok(!res.text.includes(m), `leaks ${m}`);
});

// ---------------------------------------------------------------------------------------------
// Cross-tenant access by id: 404 not_found.

// [who, token(), tenant header(), victims, routes]
const ATTACKERS = [
  ['A key', () => F.A.secret, () => undefined, [['B', ID_ROUTES], ['B1', ID_ROUTES], ['A1', KEY_SESSION_ROUTES], ['A2', KEY_SESSION_ROUTES]]],
  ['A key as A1', () => F.A.secret, () => F.A1.tenant.id, [['B', ID_ROUTES], ['B1', ID_ROUTES], ['A2', KEY_SESSION_ROUTES], ['A', KEY_SESSION_ROUTES]]],
  ['A1 key', () => F.A1.secret, () => undefined, [['A', ID_ROUTES], ['A2', ID_ROUTES], ['B', ID_ROUTES], ['B1', ID_ROUTES]]],
  ['B1 key', () => F.B1.secret, () => undefined, [['A1', ID_ROUTES], ['A', ID_ROUTES]]],
];

const cases = [];
for (const [who, tok, hdr, victims] of ATTACKERS) {
  for (const [victim, routes] of victims) {
    for (const r of routes) cases.push({ who, tok, hdr, victim, r });
  }
}

async function expectHidden(res, victim, what) {
  expectProblem(res, 404, 'not_found', undefined, what);
  for (const m of F[victim].markers) assert.ok(!res.text.includes(m), `${what}: the answer leaks "${m}"`);
}

function isolationTest(c) {
  test(`${c.who} -> ${label(c.r)} on ${c.victim}'s object -> 404 not_found`, async () => {
    const res = await api(c.r.m, fill(c.r.p, F[c.victim].objs), {
      token: c.tok(), tenant: c.hdr(), body: c.r.body && c.r.body(),
    });
    await expectHidden(res, c.victim, `${c.who} on ${c.victim}`);
  });
}
for (const c of cases.filter((x) => !x.r.destructive)) isolationTest(c);

// ---------------------------------------------------------------------------------------------
// Cobrowse-Tenant naming a tenant the key may not act as: 404 not_found.

const HEADER_ROUTES = [
  ...COLLECTION_ROUTES,
  { m: 'GET', p: '/v1/sessions/{session}', on: 'session' },
  { m: 'GET', p: '/v1/api_keys/{key}', on: 'key' },
  { m: 'GET', p: '/v1/tenants/{tenant}', on: 'tenant' },
];
const HEADER_CASES = [
  // [who, token(), named tenant (fixture name or 'unknown'), relation]
  ['A key', () => F.A.secret, 'B', 'another reseller'],
  ['A key', () => F.A.secret, 'B1', 'another reseller\'s child'],
  ['A key', () => F.A.secret, 'unknown', 'an unknown tenant'],
  ['A1 key', () => F.A1.secret, 'A2', 'a sibling'],
  ['A1 key', () => F.A1.secret, 'A', 'its parent'],
  ['A1 key', () => F.A1.secret, 'B', 'another reseller'],
  ['A1 key', () => F.A1.secret, 'B1', 'another reseller\'s child'],
  ['A1 key', () => F.A1.secret, 'unknown', 'an unknown tenant'],
  ['admin', () => ADMIN_TOKEN, 'unknown', 'an unknown tenant'],
];
for (const [who, tok, named, relation] of HEADER_CASES) {
  for (const r of HEADER_ROUTES) {
    if (named === 'unknown' && r.on) continue; // no objects to name
    test(`${who} with Cobrowse-Tenant naming ${relation} (${named}) -> ${label(r)} -> 404 not_found`, async () => {
      const tenant = named === 'unknown' ? F.unknownTenant : F[named].tenant.id;
      const path = r.on ? fill(r.p, F[named].objs) : r.p;
      const res = await api(r.m, path, { token: tok(), tenant, body: r.body && r.body() });
      if (named === 'unknown') expectProblem(res, 404, 'not_found');
      else await expectHidden(res, named, `${who} as ${named}`);
    });
  }
}

// ---------------------------------------------------------------------------------------------
// Publishable key: every route but POST /v1/sessions is 403 insufficient_scope (with an
// allowed Origin, so the origin is not the reason); revoked and expired keys: 401.

const A1objs = () => F.A1.objs;
const orderRoutes = (rs) => [...rs].sort((x, y) => (x.destructive || 0) - (y.destructive || 0));

test('control: the publishable key creates a session from the allowed origin', async () => {
  expectStatus(await api('POST', '/v1/sessions', { token: F.pk.secret, headers: { origin: ORIGIN }, body: {} }), 201);
});

for (const r of orderRoutes(ROUTES).filter((x) => !(x.m === 'POST' && x.p === '/v1/sessions') && !x.destructive)) {
  test(`publishable key -> ${label(r)} -> 403 insufficient_scope`, async () => {
    const res = await api(r.m, r.on ? fill(r.p, A1objs()) : r.p, {
      token: F.pk.secret, headers: { origin: ORIGIN }, body: r.body && r.body(),
    });
    expectProblem(res, 403, 'insufficient_scope');
    for (const m of F.A1.markers) assert.ok(!res.text.includes(m), `leaks ${m}`);
  });
}

for (const r of ROUTES.filter((x) => !x.destructive)) {
  test(`revoked key -> ${label(r)} -> 401 invalid_api_key`, async () => {
    const res = await api(r.m, r.on ? fill(r.p, A1objs()) : r.p, { token: F.revoked.secret, body: r.body && r.body() });
    expectProblem(res, 401, 'invalid_api_key');
    assert.match(String(res.body.detail), /revoked/i, 'detail says the key is revoked');
  });
}

for (const r of ROUTES.filter((x) => !x.destructive)) {
  test(`expired key -> ${label(r)} -> 401 invalid_api_key`, async () => {
    const wait = expiresAt + 1100 - Date.now();
    if (wait > 0) await sleep(wait);
    const res = await api(r.m, r.on ? fill(r.p, A1objs()) : r.p, { token: F.expired.secret, body: r.body && r.body() });
    expectProblem(res, 401, 'invalid_api_key');
    assert.match(String(res.body.detail), /expired/i, 'detail says the key has expired');
  });
}

// ---------------------------------------------------------------------------------------------
// Destructive routes, last: cross-tenant first, then publishable/revoked/expired keys.

for (const c of cases.filter((x) => x.r.destructive).sort((x, y) => x.r.destructive - y.r.destructive)) isolationTest(c);

for (const r of orderRoutes(ROUTES.filter((x) => x.destructive))) {
  test(`publishable key -> ${label(r)} -> 403 insufficient_scope`, async () => {
    const res = await api(r.m, fill(r.p, A1objs()), { token: F.pk.secret, headers: { origin: ORIGIN } });
    expectProblem(res, 403, 'insufficient_scope');
  });
  test(`revoked key -> ${label(r)} -> 401 invalid_api_key`, async () => {
    const res = await api(r.m, fill(r.p, A1objs()), { token: F.revoked.secret });
    expectProblem(res, 401, 'invalid_api_key');
  });
  test(`expired key -> ${label(r)} -> 401 invalid_api_key`, async () => {
    const res = await api(r.m, fill(r.p, A1objs()), { token: F.expired.secret });
    expectProblem(res, 401, 'invalid_api_key');
  });
}

// ---------------------------------------------------------------------------------------------
// Session-token routes take a session JWT, never an API key (of any kind, however valid); a
// session token is no API key on the other routes; one session's token never reaches another
// session, not even of the same tenant.

const TOKEN_ROUTES = [
  { m: 'GET', p: '/v1/token/session' },
  { m: 'POST', p: '/v1/token/session/end' },
];
const KEY_KINDS = [
  ['admin token', () => ADMIN_TOKEN],
  ['reseller secret key', () => F.A.secret],
  ['sub-tenant secret key', () => F.A1.secret],
  ['publishable key', () => F.pk.secret],
  ['revoked key', () => F.revoked.secret],
  ['expired key', () => F.expired.secret],
];
for (const r of TOKEN_ROUTES) {
  for (const [what, tok] of KEY_KINDS) {
    test(`${what} -> ${label(r)} -> 401 invalid_token`, async () => {
      const res = await api(r.m, r.p, { token: tok(), headers: { origin: ORIGIN } });
      expectProblem(res, 401, 'invalid_token');
      for (const m of F.A1.markers) assert.ok(!res.text.includes(m), `leaks ${m}`);
    });
  }
}
for (const r of ROUTES.filter((x) => !x.destructive)) {
  test(`A1's visitor token -> ${label(r)} -> 401 invalid_api_key`, async () => {
    const res = await api(r.m, r.on ? fill(r.p, A1objs()) : r.p, { token: F.A1.session.visitor_token, body: r.body && r.body() });
    expectProblem(res, 401, 'invalid_api_key');
  });
}
test('a session token sees its own session only: B1\'s token answers B1\'s session, none of A1\'s', async () => {
  const res = await api('GET', '/v1/token/session', { token: F.B1.session.visitor_token });
  const b = expectStatus(res, 200);
  assert.equal(b.session_id, F.B1.session.id);
  assert.equal(b.tenant_id, F.B1.tenant.id);
  for (const m of [...F.A1.markers, F.A1.session.join_code]) assert.ok(!res.text.includes(m), `leaks ${m}`);
  const a = expectStatus(await api('GET', '/v1/token/session', { token: F.A1.session.visitor_token }), 200);
  assert.equal(a.session_id, F.A1.session.id);
});

// ---------------------------------------------------------------------------------------------
// Nothing was changed by the refused calls.

for (const name of ['A', 'A1', 'A2', 'B', 'B1']) {
  test(`${name}'s objects are unchanged after the matrix`, async () => {
    const o = F[name];
    const t = expectStatus(await api('GET', `/v1/tenants/${o.tenant.id}`, { token: o.secret }), 200, 'tenant');
    assert.equal(t.status, 'active', 'tenant still active');
    assert.notEqual(t.branding?.product_name, 'pwned', 'tenant branding untouched');
    const k = expectStatus(await api('GET', `/v1/api_keys/${o.extraKey.id}`, { token: o.secret }), 200, 'key');
    assert.equal(k.revoked_at, null, 'key not revoked');
    const s = expectStatus(await api('GET', `/v1/sessions/${o.session.id}`, { token: o.secret }), 200, 'session');
    assert.notEqual(s.status, 'ended', 'session not ended');
    const list = expectStatus(await api('GET', '/v1/sessions?external_id=pwned&limit=100', { token: o.secret }), 200);
    // A1's own publishable-key control session has no external_id; nobody created "pwned" ones.
    assert.equal(list.data.length, 0, 'no session was created by an intruder');
    const keys = expectStatus(await api('GET', '/v1/api_keys?limit=100', { token: o.secret }), 200);
    assert.ok(!keys.data.some((x) => String(x.name).startsWith('iso-key')), 'no key was created by an intruder');
  });
}
test('no tenant was created under A or B by an intruder', async () => {
  for (const n of ['A', 'B']) {
    const ids = await listIds(F[n].secret, '/v1/tenants');
    const want = n === 'A' ? [F.A1.tenant.id, F.A2.tenant.id] : [F.B1.tenant.id];
    assert.deepEqual(sorted(ids), sorted(want), `${n}'s sub-tenants`);
  }
});
