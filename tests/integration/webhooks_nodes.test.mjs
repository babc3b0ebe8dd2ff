// Webhook delivery as an operator runs it (docs/webhooks.md, "Delivery"): two nodes on one
// database, an endpoint disabled after failing too long, retention, and the tenant and key
// events. Real servers and a real receiver verifying with npm `standardwebhooks`, each test on a
// database of its own (lib/webhook_stack.mjs).

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { startServer, assertCleanExit } from '../relay/lib/server.mjs';
import { eventually } from '../relay/lib/platform.mjs';
import { expectStatus } from './lib/client.mjs';
import {
  skip, FAST, psql, stack, assertWellFormed,
} from './lib/webhook_stack.mjs';

test('two nodes on one database share the deliveries: each event delivered once, by one of them', { skip, timeout: 120_000 }, async (t) => {
  // One delivery in flight per node and a receiver that takes 100 ms: while one node waits, the
  // other finds due deliveries (on its NOTIFY, or its poll every second at most).
  const flags = { ...FAST, 'webhook-concurrency': 1 };
  const st = await stack(t, { flags });
  const dataKey = readFileSync(path.join(st.srv.dataDir, 'data.key'), 'utf8').trim();
  // The second node: same database and data key (it opens the secrets the first one sealed).
  const other = await startServer({ flags, env: { DATABASE_URL: st.db.url, COBROWSE_DATA_KEY: dataKey }, name: 'webhooks-b' });
  let otherStopped = false;
  t.after(async () => { if (!otherStopped) await other.stop(); });
  const rx = await st.receiver();
  rx.answer({ delayMs: 100 });
  const tenant = await st.P.tenant();
  const ep = await st.hooks.create(tenant.id, { url: rx.url, event_types: ['session.created'] });
  rx.trust('endpoint', ep.secret);
  const N = 60;
  for (let i = 0; i < N; i++) await st.P.session(tenant.id);
  const expected = await st.hooks.eventIds(tenant.id);
  assert.equal(expected.length, N);
  await rx.waitFor((r) => expected.every((id) => r.ids().has(id)), 60_000, `all ${N} events`);
  await eventually(async () => (await st.hooks.deliveries(ep.id)).every((d) => d.status === 'succeeded'),
    10_000, 'every delivery recorded as succeeded');
  assertWellFormed(rx, [tenant.id]);
  const times = new Map();
  for (const e of rx.envelopes()) times.set(e.id, (times.get(e.id) || 0) + 1);
  assert.deepEqual([...times.entries()].filter(([, n]) => n !== 1), [], 'no event delivered twice');
  assert.ok((await st.hooks.deliveries(ep.id)).every((d) => d.attempts === 1), 'one attempt each');
  const succeeded = async (srv) => {
    const text = await (await fetch(`${srv.baseUrl}/metrics`)).text();
    return Number(text.match(/^webhook_deliveries_total\{outcome="succeeded"\} (\d+)$/m)?.[1] ?? -1);
  };
  const [a, b] = [await succeeded(st.srv), await succeeded(other)];
  assert.equal(a + b, N, `the two nodes delivered ${a} and ${b}`);
  assert.ok(a > 0 && b > 0, `both nodes delivered: ${a} and ${b}`);
  otherStopped = true;
  assertCleanExit(await other.stop(), 'the second node');
});

test('an endpoint failing longer than --webhook-disable-after is disabled (failing): its pending deliveries fail, the other endpoint hears of it', { skip, timeout: 90_000 }, async (t) => {
  const st = await stack(t, { flags: { ...FAST, 'webhook-disable-after': '2s' } });
  const bad = await st.receiver();
  const witness = await st.receiver();
  const tenant = await st.P.tenant();
  const ep = await st.hooks.create(tenant.id, { url: bad.url });
  const ep2 = await st.hooks.create(tenant.id, { url: witness.url, event_types: ['webhook_endpoint.disabled'] });
  bad.trust('endpoint', ep.secret).answer({ status: 500 });
  witness.trust('endpoint', ep2.secret);
  await st.P.session(tenant.id);
  const off = await eventually(async () => {
    const e = await st.hooks.get(tenant.id, ep.id);
    return e.enabled === false && e;
  }, 30_000, 'the endpoint disabled after failing for 2 s');
  assert.equal(off.disabled_reason, 'failing');
  assert.ok(bad.requests.length >= 2, `attempts before disabling: ${bad.requests.length}`);
  const notice = await witness.waitFor((r) => r.envelopes().find((e) => e.type === 'webhook_endpoint.disabled'), 15_000, 'the notice at the other endpoint');
  assert.equal(notice.data.endpoint_id, ep.id);
  assert.equal(notice.data.reason, 'failing');
  const ds = await st.hooks.deliveries(ep.id);
  assert.ok(ds.length >= 1 && ds.every((d) => d.status === 'failed'), `no delivery left pending: ${JSON.stringify(ds)}`);
  const before = bad.requests.length;
  await st.P.session(tenant.id);
  await eventually(async () => (await st.hooks.eventIds(tenant.id)).length >= 3, 10_000, 'the next event written');
  assert.equal((await st.hooks.deliveries(ep.id)).length, ds.length, 'no delivery is made for the disabled endpoint');
  assert.equal(bad.requests.length, before, 'nothing more sent to it');
});

test('retention: events older than --webhook-retention-days go with their deliveries and attempts, unless a delivery is pending', { skip, timeout: 90_000 }, async (t) => {
  const st = await stack(t, { flags: { ...FAST, 'webhook-retention-days': 1 } });
  const rx = await st.receiver();
  const tenant = await st.P.tenant();
  const ep = await st.hooks.create(tenant.id, { url: rx.url });
  rx.trust('endpoint', ep.secret);
  await st.P.session(tenant.id);
  await st.P.session(tenant.id);
  await eventually(async () => (await st.hooks.deliveries(ep.id)).filter((d) => d.status === 'succeeded').length === 2,
    15_000, 'two deliveries succeeded');
  await rx.down();
  await st.P.session(tenant.id); // its delivery stays pending: the receiver is down
  await eventually(async () => (await st.hooks.deliveries(ep.id)).some((d) => d.status === 'pending' && d.attempts >= 1),
    15_000, 'a pending delivery attempted');
  const [[pendingEvent]] = await psql(st.db.url, `SELECT event_id FROM webhook_deliveries WHERE endpoint_id = :'p1' AND status = 'pending'`, ep.id);
  // Three days old, all of them; a new event stays young.
  await psql(st.db.url, `UPDATE webhook_events SET created_at = now() - interval '3 days' WHERE tenant_id = :'p1'`, tenant.id);
  // A node runs retention on its first turn (then every minute): restart to get one now.
  await st.kill();
  await st.restart();
  await eventually(async () => (await st.hooks.eventIds(tenant.id)).length === 1, 15_000, 'the two delivered old events deleted');
  assert.deepEqual(await st.hooks.eventIds(tenant.id), [pendingEvent], 'the event with a pending delivery is kept');
  const [[attempts]] = await psql(st.db.url, `SELECT count(*) FROM webhook_attempts a JOIN webhook_deliveries d ON d.id = a.delivery_id
    WHERE d.endpoint_id = :'p1' AND d.event_id <> :'p2'`, ep.id, pendingEvent);
  assert.equal(attempts, '0', 'their attempts went with them');
  assert.equal((await st.hooks.deliveries(ep.id)).length, 1, 'and their deliveries');
});

test('tenant and key events: api_key.created and .revoked (never the key), tenant.suspended and .reactivated', { skip, timeout: 90_000 }, async (t) => {
  const st = await stack(t);
  const rx = await st.receiver();
  const tenant = await st.P.tenant();
  const ep = await st.hooks.create(tenant.id, { url: rx.url, event_types: ['api_key.created', 'api_key.revoked', 'tenant.suspended', 'tenant.reactivated'] });
  rx.trust('endpoint', ep.secret);
  const key = expectStatus(await st.P.call('POST', '/v1/api_keys', { tenant: tenant.id, body: { type: 'secret', name: 'ci' } }), 201, 'create key');
  expectStatus(await st.P.call('POST', `/v1/api_keys/${key.id}/revoke`, { tenant: tenant.id }), 200, 'revoke key');
  expectStatus(await st.P.call('POST', `/v1/tenants/${tenant.id}/suspend`, {}), 200, 'suspend');
  expectStatus(await st.P.call('POST', `/v1/tenants/${tenant.id}/reactivate`, {}), 200, 'reactivate');
  const types = ['api_key.created', 'api_key.revoked', 'tenant.suspended', 'tenant.reactivated'];
  await rx.waitFor((r) => types.every((ty) => r.envelopes().some((e) => e.type === ty)), 15_000, 'the four events');
  assertWellFormed(rx, [tenant.id]);
  const evs = rx.envelopes();
  assert.deepEqual([...new Set(evs.map((e) => e.type))].sort(), [...types].sort(), 'only the types the endpoint asked for');
  for (const e of evs) {
    assert.equal(e.session_id, null, `${e.type}: a tenant event`);
    assert.equal(e.seq, null, `${e.type}: no session sequence`);
  }
  const created = evs.find((e) => e.type === 'api_key.created').data.api_key;
  assert.equal(created.id, key.id);
  assert.ok(!JSON.stringify(evs).includes(key.secret ?? key.key ?? '\u0000'), 'the key itself is never in an event');
  assert.ok(evs.find((e) => e.type === 'api_key.revoked').data.api_key.revoked_at, 'revoked_at');
  assert.equal(evs.find((e) => e.type === 'tenant.suspended').data.status, 'suspended');
  assert.equal(evs.find((e) => e.type === 'tenant.reactivated').data.status, 'active');
});
