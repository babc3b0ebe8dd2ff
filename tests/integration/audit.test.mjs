// The audit trail (docs/audit.md): an entry for every change with who made it (actor), what
// (action, target, changes), when, from where (address, request id); never a secret; the
// acting-tenant rules of the other routes; the hash chain verifies, a row changed behind the
// API's back is named by verify, and concurrent changes of one tenant make a gapless chain.

import { test, before } from 'node:test';
import assert from 'node:assert/strict';
import {
  api, ADMIN_TOKEN, expectStatus, expectProblem, mutateId, newKey, newReseller, newSubTenant,
  newSession,
} from './lib/client.mjs';
import { sql, DATABASE_URL } from './lib/db.mjs';

const skipDb = DATABASE_URL ? false : 'DATABASE_URL is not set (scripts/test.sh sets it)';
const hookUrl = (n) => `https://127.0.0.1:9/hooks/audit-${n}`;

/** Every entry of a tenant's trail, newest first, through the API's pages. */
async function trail(token, tenant) {
  const out = [];
  let after;
  for (;;) {
    const q = after ? `?limit=100&starting_after=${after}` : '?limit=100';
    const page = expectStatus(await api('GET', `/v1/audit_events${q}`, { token, tenant }), 200);
    out.push(...page.data);
    if (!page.has_more) return out;
    after = page.data[page.data.length - 1].id;
  }
}

const verify = async (token, tenant) =>
  expectStatus(await api('GET', '/v1/audit_events/verify', { token, tenant }), 200);

// One change through the API: the response, and the entry that must record it.
async function change(method, path, opts) {
  const res = await api(method, path, opts);
  assert.ok(res.status < 300, `${method} ${path}: ${res.status} ${res.text}`);
  return res;
}

function assertEntry(entries, res, { action, targetType, targetId, actor }) {
  const rid = res.headers.get('x-request-id');
  const e = entries.find((x) => x.request_id === rid && x.action === action);
  assert.ok(e, `an ${action} entry for request ${rid}: ${JSON.stringify(entries.map((x) => [x.action, x.request_id]))}`);
  assert.deepEqual(e.target, { type: targetType, id: targetId }, `${action} target`);
  assert.deepEqual(e.actor, actor, `${action} actor`);
  assert.equal(e.client_address, '127.0.0.1', `${action} address`);
  return e;
}

const F = {};
before(async () => {
  F.A = await newReseller();
  F.B = await newReseller();
  F.A1 = await newSubTenant(F.A.secret);
  F.A2 = await newSubTenant(F.A.secret);
  F.actorA = { type: 'api_key', id: F.A.key.id, name: F.A.key.name };
});

test('each kind of change is recorded with its actor, target, address and request id; no secret in any entry', async () => {
  const tok = F.A.secret;
  const secrets = [F.A.secret, F.A1.secret];
  const made = []; // [res, expectation, tenant whose trail holds it]
  const rec = (res, exp, tenant = F.A.tenant.id) => made.push([res, { actor: F.actorA, ...exp }, tenant]);

  // Tenants: a sub-tenant's creation and changes are in its own trail.
  let r = await change('POST', '/v1/tenants', { token: tok, body: { name: 'audited sub' } });
  const sub = r.body;
  rec(r, { action: 'tenant.created', targetType: 'tenant', targetId: sub.id }, sub.id);
  r = await change('PATCH', `/v1/tenants/${sub.id}`, { token: tok, body: { name: 'renamed', branding: { product_name: 'Help' } } });
  rec(r, { action: 'tenant.updated', targetType: 'tenant', targetId: sub.id }, sub.id);
  r = await change('POST', `/v1/tenants/${sub.id}/suspend`, { token: tok });
  rec(r, { action: 'tenant.suspended', targetType: 'tenant', targetId: sub.id }, sub.id);
  r = await change('POST', `/v1/tenants/${sub.id}/reactivate`, { token: tok });
  rec(r, { action: 'tenant.reactivated', targetType: 'tenant', targetId: sub.id }, sub.id);

  // Keys.
  r = await change('POST', '/v1/api_keys', { token: tok, body: { type: 'secret', name: 'audited key', scopes: ['sessions:read'] } });
  const key = r.body;
  secrets.push(key.secret);
  rec(r, { action: 'api_key.created', targetType: 'api_key', targetId: key.id });
  r = await change('POST', `/v1/api_keys/${key.id}/revoke`, { token: tok });
  rec(r, { action: 'api_key.revoked', targetType: 'api_key', targetId: key.id });

  // Sessions, an agent token, ends by the API and by the visitor's token.
  r = await change('POST', '/v1/sessions', { token: tok, body: { visitor: { external_id: 'u-1' } } });
  const s1 = r.body;
  secrets.push(s1.visitor_token);
  rec(r, { action: 'session.created', targetType: 'session', targetId: s1.id });
  r = await change('POST', `/v1/sessions/${s1.id}/agent_tokens`, { token: tok, body: { agent: { id: 'ag-1', name: 'Ann' } } });
  secrets.push(r.body.token);
  rec(r, { action: 'agent_token.created', targetType: 'session', targetId: s1.id });
  r = await change('POST', `/v1/sessions/${s1.id}/end`, { token: tok });
  rec(r, { action: 'session.ended', targetType: 'session', targetId: s1.id });
  const s2 = await newSession(tok);
  secrets.push(s2.visitor_token);
  r = await change('POST', '/v1/token/session/end', { token: s2.visitor_token });
  rec(r, { action: 'session.ended', targetType: 'session', targetId: s2.id,
    actor: { type: 'session_token', id: JSON.parse(Buffer.from(s2.visitor_token.split('.')[1], 'base64url')).jti, name: 'visitor' } });

  // Webhook endpoints: create, update, rotate, test, replay, a delivery's retry, delete.
  r = await change('POST', '/v1/webhook_endpoints', { token: tok, body: { url: hookUrl(1) } });
  const ep = r.body;
  secrets.push(ep.secret);
  rec(r, { action: 'webhook_endpoint.created', targetType: 'webhook_endpoint', targetId: ep.id });
  r = await change('PATCH', `/v1/webhook_endpoints/${ep.id}`, { token: tok, body: { description: 'billing' } });
  rec(r, { action: 'webhook_endpoint.updated', targetType: 'webhook_endpoint', targetId: ep.id });
  r = await change('POST', `/v1/webhook_endpoints/${ep.id}/rotate_secret`, { token: tok });
  secrets.push(r.body.secret);
  rec(r, { action: 'webhook_endpoint.secret_rotated', targetType: 'webhook_endpoint', targetId: ep.id });
  r = await change('POST', `/v1/webhook_endpoints/${ep.id}/test`, { token: tok });
  const delivery = r.body;
  rec(r, { action: 'webhook_endpoint.tested', targetType: 'webhook_endpoint', targetId: ep.id });
  const now = Date.now();
  r = await change('POST', `/v1/webhook_endpoints/${ep.id}/replay`, { token: tok,
    body: { since: new Date(now - 60_000).toISOString(), until: new Date(now + 60_000).toISOString() } });
  rec(r, { action: 'webhook_endpoint.replayed', targetType: 'webhook_endpoint', targetId: ep.id });
  r = await api('POST', `/v1/webhook_deliveries/${delivery.id}/retry`, { token: tok });
  if (r.status === 200) // a delivery that succeeded cannot be retried; this receiver refuses all
    rec(r, { action: 'webhook_delivery.retried', targetType: 'webhook_delivery', targetId: delivery.id });
  else assert.fail(`retry: ${r.status} ${r.text}`);
  r = await change('DELETE', `/v1/webhook_endpoints/${ep.id}`, { token: tok });
  rec(r, { action: 'webhook_endpoint.deleted', targetType: 'webhook_endpoint', targetId: ep.id });

  // The admin token acts too: its entries name it.
  r = await change('POST', '/v1/sessions', { token: ADMIN_TOKEN, tenant: F.A.tenant.id, body: {} });
  secrets.push(r.body.visitor_token);
  made.push([r, { action: 'session.created', targetType: 'session', targetId: r.body.id,
    actor: { type: 'admin_token', id: expectStatus(await api('GET', `/v1/audit_events?target_id=${r.body.id}`, { token: tok }), 200).data[0].actor.id, name: 'tests' } }, F.A.tenant.id]);
  assert.match(made.at(-1)[1].actor.id, /^adm_/);

  const trails = { [F.A.tenant.id]: await trail(tok, undefined), [sub.id]: await trail(ADMIN_TOKEN, sub.id) };
  for (const [res, exp, tenant] of made) assertEntry(trails[tenant], res, exp);

  // A deleted tenant is 404 to every route, its trail included: its last entry is read in SQL.
  const subTrail = trails[sub.id];
  r = await change('DELETE', `/v1/tenants/${sub.id}`, { token: tok });
  expectProblem(await api('GET', '/v1/audit_events', { token: tok, tenant: sub.id }), 404, 'not_found');
  if (DATABASE_URL) {
    const rows = await sql(`SELECT action, actor_type, actor_id, request_id, client_address FROM audit_events
                            WHERE tenant_id = :'p1' ORDER BY seq DESC LIMIT 1`, sub.id);
    assert.deepEqual(rows, [['tenant.deleted', 'api_key', F.A.key.id, r.headers.get('x-request-id'), '127.0.0.1']]);
    const [[intact]] = await sql(`SELECT broken_id IS NULL FROM audit_verify(:'p1')`, sub.id);
    assert.equal(intact, 't');
  }

  const text = JSON.stringify(trails);
  for (const s of secrets) assert.ok(!text.includes(s), `a secret shown once is in the trail: ${s.slice(0, 12)}...`);
  assert.ok(!/whsec_|sk_[a-z0-9]{20}|pk_[a-z0-9]{20}|eyJ/.test(text), 'no secret-shaped value in the trail');
  if (DATABASE_URL) {
    const [[hash]] = await sql('SELECT key_hash FROM api_keys WHERE id = :\'p1\'', key.id);
    assert.ok(!text.includes(hash), 'no key hash in the trail');
  }

  // Filters: action, target, time.
  const only = expectStatus(await api('GET', `/v1/audit_events?action=api_key.revoked&target_id=${key.id}`, { token: tok }), 200);
  assert.deepEqual(only.data.map((e) => e.action), ['api_key.revoked']);
  const future = new Date(Date.now() + 3600_000).toISOString();
  assert.equal(expectStatus(await api('GET', `/v1/audit_events?occurred_after=${encodeURIComponent(future)}`, { token: tok }), 200).data.length, 0);
  expectProblem(await api('GET', '/v1/audit_events?action=DROP%20TABLE', { token: tok }), 400, 'invalid_parameter', 'action');
  expectProblem(await api('GET', '/v1/audit_events?occurred_after=yesterday', { token: tok }), 400, 'invalid_parameter', 'occurred_after');

  // The chains verify.
  assert.ok(subTrail.length >= 4);
  for (const [t, tenant] of [[tok, undefined], [F.A1.secret, undefined]]) {
    const v = await verify(t, tenant);
    assert.equal(v.intact, true, JSON.stringify(v));
    assert.equal(v.first_broken, null);
  }
});

test('a change made by no request (a session ended by the platform) is actor system', { skip: skipDb }, async () => {
  const s = await newSession(F.A1.secret);
  // sessions_end is what the sweeper and the relay's idle timeout call, on no request.
  await sql('SELECT count(*) FROM sessions_end(ARRAY[:\'p1\'], \'idle\')', s.id);
  const [e] = expectStatus(await api('GET', `/v1/audit_events?target_id=${s.id}&action=session.ended`, { token: F.A1.secret }), 200).data;
  assert.deepEqual(e.actor, { type: 'system', id: null, name: null });
  assert.deepEqual(e.changes, { reason: 'idle' });
  assert.equal(e.request_id, null);
});

test('a tenant sees only its own trail; a reseller reads its sub-tenants\' by acting for them', async () => {
  const s = await newSession(F.A1.secret);
  const [mine] = expectStatus(await api('GET', `/v1/audit_events?target_id=${s.id}`, { token: F.A1.secret }), 200).data;
  assert.equal(mine.tenant_id, F.A1.tenant.id);
  // The reseller, acting for its sub-tenant, sees it; on its own trail it does not.
  expectStatus(await api('GET', `/v1/audit_events/${mine.id}`, { token: F.A.secret, tenant: F.A1.tenant.id }), 200);
  expectProblem(await api('GET', `/v1/audit_events/${mine.id}`, { token: F.A.secret }), 404, 'not_found');
  // Another reseller, a sibling sub-tenant, the sub-tenant for its parent: 404.
  expectProblem(await api('GET', `/v1/audit_events/${mine.id}`, { token: F.B.secret }), 404, 'not_found');
  expectProblem(await api('GET', `/v1/audit_events/${mine.id}`, { token: F.A2.secret }), 404, 'not_found');
  expectProblem(await api('GET', '/v1/audit_events', { token: F.A2.secret, tenant: F.A1.tenant.id }), 404, 'not_found');
  expectProblem(await api('GET', '/v1/audit_events', { token: F.B.secret, tenant: F.A1.tenant.id }), 404, 'not_found');
  expectProblem(await api('GET', '/v1/audit_events/verify', { token: F.A1.secret, tenant: F.A.tenant.id }), 404, 'not_found');
  const others = await trail(F.B.secret);
  assert.ok(others.every((e) => e.tenant_id === F.B.tenant.id), 'B\'s list holds only B\'s entries');
  // Malformed id: 400; the scope is needed.
  expectProblem(await api('GET', `/v1/audit_events/${mutateId(mine.id).replace(/^aud_/, 'ses_')}`, { token: F.A1.secret }), 400, 'invalid_parameter', 'id');
  const narrow = await newKey(F.A1.secret, null, { type: 'secret', scopes: ['sessions:read'] });
  expectProblem(await api('GET', '/v1/audit_events', { token: narrow.secret }), 403, 'insufficient_scope');
  expectProblem(await api('GET', '/v1/audit_events', { token: ADMIN_TOKEN }), 400, 'tenant_header_required');
});

test('concurrent changes of one tenant make a gapless chain that verifies', async () => {
  const t = await newSubTenant(F.B.secret);
  // Keys and sessions: creating a key takes no lock of the tenant's, so only the chain's own
  // serializes them.
  await Promise.all(Array.from({ length: 24 }, (_, i) => (i % 2
    ? newSession(t.secret)
    : newKey(t.secret, null, { type: 'secret', scopes: ['sessions:read'] }))));
  const entries = await trail(t.secret);
  const seqs = entries.map((e) => e.seq).sort((a, b) => a - b);
  assert.deepEqual(seqs, Array.from({ length: seqs.length }, (_, i) => i + 1), 'seq 1..n without gaps');
  assert.ok(seqs.length >= 24 + 2, `24 changes, the tenant and its key: ${seqs.length}`);
  const bySeq = new Map(entries.map((e) => [e.seq, e]));
  for (let i = 2; i <= seqs.length; i++) assert.equal(bySeq.get(i).prev_hash, bySeq.get(i - 1).hash, `link ${i}`);
  const v = await verify(t.secret);
  assert.equal(v.intact, true);
  assert.equal(v.checked, seqs.length);
  assert.equal(v.latest_hash, bySeq.get(seqs.length).hash);
});

test('an entry changed in the database is named by verify; so is one removed', { skip: skipDb }, async () => {
  const t = await newSubTenant(F.B.secret);
  for (let i = 0; i < 4; i++) await newSession(t.secret);
  const entries = (await trail(t.secret)).sort((a, b) => a.seq - b.seq);
  assert.equal((await verify(t.secret)).intact, true);

  // Rewrite what an entry says (who did it): its own hash no longer matches.
  const victim = entries[2];
  await sql(`UPDATE audit_events SET actor_id = 'key_01AAAAAAAAAAAAAAAAAAAAAAAA' WHERE id = :'p1'`, victim.id);
  let v = await verify(t.secret);
  assert.equal(v.intact, false);
  assert.deepEqual(v.first_broken, { id: victim.id, seq: victim.seq, reason: 'hash_mismatch' });
  assert.equal(v.checked, victim.seq - 1);

  // Recompute that entry's hash too: the next entry's link breaks.
  await sql(`UPDATE audit_events SET hash = audit_hash(prev_hash, audit_events) WHERE id = :'p1'`, victim.id);
  v = await verify(t.secret);
  assert.deepEqual(v.first_broken, { id: entries[3].id, seq: entries[3].seq, reason: 'prev_hash_mismatch' });

  // Delete an entry: the gap is named.
  await sql(`DELETE FROM audit_events WHERE id = :'p1'`, entries[1].id);
  v = await verify(t.secret);
  assert.deepEqual(v.first_broken, { id: entries[2].id, seq: entries[2].seq, reason: 'seq_gap' });
});
