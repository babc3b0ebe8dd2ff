// Webhook delivery end to end (docs/webhooks.md): real servers, a real relay WebSocket, and a
// real HTTP receiver (lib/webhook_receiver.mjs) that verifies every request with the npm
// `standardwebhooks` package, as a partner would.
//
// Every test has a database and a server of its own: dispatchers share the deliveries of their
// database (FOR UPDATE SKIP LOCKED), so a server of another file (the suite's, which allows no
// private receiver, or one with another retry schedule) on the same database would take these
// tests' deliveries. The database is a fresh one in the cluster of $DATABASE_URL, dropped after.
//
// Endpoints are made through the REST API (`POST /v1/webhook_endpoints`). On a build without
// that route yet, rows are written in SQL the way the API writes them (the secret sealed with the
// server's data key, AES-256-GCM, the endpoint's id as associated data), so these tests run
// against the dispatcher alone; the SSRF test always writes its row in SQL (see there).

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { eventually } from '../relay/lib/platform.mjs';
import { connectVisitor, connectAgent } from '../relay/lib/relay.mjs';
import { expectStatus, uniq } from './lib/client.mjs';
import {
  skip, FAST, psql, stack, assertWellFormed, sessionEvents, hasEvent, wholeSession,
} from './lib/webhook_stack.mjs';

// ---------------------------------------------------------------------------------------------

test('a whole session\'s life is delivered, every request verified, seq 1..n in commit order', { skip, timeout: 90_000 }, async (t) => {
  const st = await stack(t);
  const rx = await st.receiver();
  const tenant = await st.P.tenant({ permissions: { remote_control: 'ask' } });
  const ep = await st.hooks.create(tenant.id, { url: rx.url, description: 'e2e' });
  rx.trust('endpoint', ep.secret);
  const step = (s, type) => rx.waitFor(hasEvent(s.id, type), 15_000, type);

  const s = await st.P.session(tenant.id);
  await step(s, 'session.created');
  const v = await connectVisitor(st.srv.relayUrl, s.visitor_token);
  t.after(() => v.terminate());
  await step(s, 'session.visitor_connected');
  const bob = { id: 'agent-7', name: 'Bob' };
  const at = await st.P.agentToken(tenant.id, s.id, bob);
  const a = await connectAgent(st.srv.relayUrl, at.token);
  t.after(() => a.terminate());
  await step(s, 'session.agent_joined');
  a.send({ type: 'request_control' });
  await step(s, 'session.control_requested');
  v.send({ type: 'consent', agent_id: bob.id, remote_control: 'granted' });
  await step(s, 'session.control_granted');
  v.send({ type: 'consent', agent_id: bob.id, remote_control: 'revoked' });
  await step(s, 'session.control_revoked');
  await st.P.endSession(tenant.id, s.id);
  await rx.waitFor(wholeSession(s.id), 15_000, 'every event up to session.ended');

  assertWellFormed(rx, [tenant.id]);
  const evs = sessionEvents(rx, s.id);
  assert.deepEqual(evs.map((e) => e.seq), evs.map((_, i) => i + 1), 'seq numbers the session\'s events 1..n');
  const types = evs.map((e) => e.type);
  assert.deepEqual(types.slice(0, 6), ['session.created', 'session.visitor_connected', 'session.agent_joined',
    'session.control_requested', 'session.control_granted', 'session.control_revoked'], 'in the order they happened');
  // sessions_end marks both participants gone in one statement (either order), then ends it.
  assert.deepEqual(types.slice(6, 8).sort(), ['session.agent_left', 'session.visitor_disconnected']);
  assert.equal(types.at(-1), 'session.ended', 'session.ended is the last event');
  assert.equal(types.length, 9, `exactly these events: ${types}`);
  for (const e of evs) {
    assert.equal(e.tenant_id, tenant.id);
    assert.equal(e.data.session_id, s.id, `${e.type}: data.session_id`);
  }
  const byType = Object.fromEntries(evs.map((e) => [e.type, e]));
  assert.equal(byType['session.created'].data.join_code, s.join_code);
  assert.deepEqual(byType['session.agent_joined'].data.agent, bob);
  assert.equal(byType['session.control_granted'].data.agent_id, bob.id);
  assert.equal(byType['session.ended'].data.reason, (await st.P.getSession(tenant.id, s.id)).end_reason);
  assert.ok(byType['session.ended'].data.ended_at, 'session.ended: ended_at');
});

test('receiver down, then up: every event arrives after retries, with the same ids', { skip, timeout: 90_000 }, async (t) => {
  const st = await stack(t);
  const rx = await st.receiver();
  const tenant = await st.P.tenant();
  const ep = await st.hooks.create(tenant.id, { url: rx.url });
  rx.trust('endpoint', ep.secret);
  await rx.down();

  const sessions = [];
  for (let i = 0; i < 3; i++) sessions.push(await st.P.session(tenant.id));
  await st.P.endSession(tenant.id, sessions[0].id);
  const expected = await st.hooks.eventIds(tenant.id);
  assert.equal(expected.length, 4, 'three session.created and one session.ended in the outbox');
  // Down long enough that every delivery failed at least twice (connection refused).
  await eventually(async () => {
    const ds = await st.hooks.deliveries(ep.id);
    return ds.length === expected.length && ds.every((d) => d.attempts >= 2 && d.status === 'pending');
  }, 30_000, 'every delivery attempted twice while the receiver is down');
  assert.equal(rx.requests.length, 0, 'nothing arrived while down');
  const failed = await st.hooks.attempts(tenant.id, ep.id);
  assert.ok(failed.length >= 2 * expected.length, `attempts recorded: ${failed.length}`);
  assert.ok(failed.every((a) => a.status_code === null && a.error), `each failed attempt says why: ${JSON.stringify(failed.slice(0, 2))}`);

  await rx.up();
  await rx.waitFor((r) => expected.every((id) => r.ids().has(id)), 30_000, 'every event after the receiver came back');
  assertWellFormed(rx, [tenant.id]);
  await eventually(async () => (await st.hooks.deliveries(ep.id)).every((d) => d.status === 'succeeded'),
    10_000, 'every delivery succeeded');
});

test('kill -9 of the server mid-delivery: after a restart every event is delivered, none lost', { skip, timeout: 150_000 }, async (t) => {
  // A short timeout makes the dead node's lease (timeout plus a margin) expire soon.
  const st = await stack(t, { flags: { ...FAST, 'webhook-timeout-ms': 2000 } });
  const rx = await st.receiver();
  const tenant = await st.P.tenant();
  const ep = await st.hooks.create(tenant.id, { url: rx.url });
  rx.trust('endpoint', ep.secret);
  rx.answer({ hold: true }); // the receiver takes the requests and answers none

  const sessions = [];
  for (let i = 0; i < 4; i++) sessions.push(await st.P.session(tenant.id));
  await rx.waitFor((r) => r.held().length >= 1, 15_000, 'a delivery in flight');
  await st.kill();
  // Events written while no node runs wait in the outbox too (sessions_end in SQL: the server
  // is what usually calls it).
  await psql(st.db.url, `SELECT 1 FROM sessions_end(ARRAY[:'p1', :'p2']::text[], 'ended_by_api')`, sessions[0].id, sessions[1].id);
  rx.answer({});
  await st.restart();
  const expected = await st.hooks.eventIds(tenant.id);
  assert.equal(expected.length, 6, 'four session.created, two session.ended');

  // The dead node's leases (its timeout plus the dispatcher's margin) expire before its
  // deliveries are made again.
  const ok = (r) => new Set(r.requests.filter((x) => x.answered && x.answered.status === 200).map((x) => x.envelope.id));
  await rx.waitFor((r) => expected.every((id) => ok(r).has(id)), 90_000, 'every event answered 200 after the restart');
  assertWellFormed(rx, [tenant.id]);
  assert.deepEqual([...ok(rx)].sort(), [...expected].sort(), 'each event delivered at least once (duplicates allowed), nothing else');
  await eventually(async () => (await st.hooks.deliveries(ep.id)).every((d) => d.status === 'succeeded'),
    10_000, 'every delivery succeeded');
});

test('410 Gone disables the endpoint (enabled false, disabled_reason gone), the tenant\'s other endpoint hears of it, nothing more is sent', { skip, timeout: 90_000 }, async (t) => {
  const st = await stack(t);
  const gone = await st.receiver();
  const witness = await st.receiver();
  const tenant = await st.P.tenant();
  const ep = await st.hooks.create(tenant.id, { url: gone.url });
  const ep2 = await st.hooks.create(tenant.id, { url: witness.url });
  gone.trust('endpoint', ep.secret).answer({ status: 410 });
  witness.trust('endpoint', ep2.secret);
  const s1 = await st.P.session(tenant.id);
  await gone.waitFor((r) => r.requests.length >= 1, 15_000, 'the first delivery');
  const off = await eventually(async () => {
    const e = await st.hooks.get(tenant.id, ep.id);
    return e.enabled === false && e;
  }, 15_000, 'the endpoint disabled');
  assert.equal(off.disabled_reason, 'gone');
  const notice = await witness.waitFor((r) => r.envelopes().find((e) => e.type === 'webhook_endpoint.disabled'), 15_000, 'webhook_endpoint.disabled at the other endpoint');
  assert.equal(notice.data.endpoint_id, ep.id);
  assert.equal(notice.data.reason, 'gone');
  assert.equal(notice.session_id, null, 'a tenant event');

  // What happens next reaches the healthy endpoint, never the disabled one (even answering 200).
  gone.answer({});
  await st.P.endSession(tenant.id, s1.id);
  const s2 = await st.P.session(tenant.id);
  await witness.waitFor((r) => hasEvent(s1.id, 'session.ended')(r) && hasEvent(s2.id, 'session.created')(r), 15_000, 'later events at the witness');
  assertWellFormed(witness, [tenant.id]);
  assert.ok(gone.requests.every((r) => r.envelope.id === gone.requests[0].envelope.id),
    `the disabled endpoint got nothing after its 410: ${gone.requests.map((r) => r.envelope.type)}`);
  assert.equal(gone.requests[0].envelope.type, 'session.created');
  const ds = await st.hooks.deliveries(ep.id);
  assert.equal(ds.length, 1, 'no delivery is made for a disabled endpoint');
  assert.equal(ds[0].status, 'failed');
  assert.equal(ds[0].attempts, 1, 'a 410 is not retried');
});

test('429 with Retry-After: 2 is honoured: the retry comes after 2 s, later than the schedule\'s next', { skip, timeout: 90_000 }, async (t) => {
  const st = await stack(t);
  const rx = await st.receiver();
  const tenant = await st.P.tenant();
  const ep = await st.hooks.create(tenant.id, { url: rx.url });
  // The first request of each event gets a 429: with Retry-After: 2 for session.created, with
  // none for session.ended (that one retries on the schedule: 300 ms).
  const seen = new Set();
  rx.trust('endpoint', ep.secret).answer((r) => {
    if (!r.envelope || seen.has(r.envelope.id)) return {};
    seen.add(r.envelope.id);
    return r.envelope.type === 'session.created' ? { status: 429, headers: { 'retry-after': '2' } } : { status: 429 };
  });
  const s = await st.P.session(tenant.id);
  await rx.waitFor(hasEvent(s.id, 'session.created'), 15_000, 'the first attempt');
  await st.P.endSession(tenant.id, s.id);
  const twice = (type) => (r) => r.requests.filter((x) => x.envelope && x.envelope.session_id === s.id && x.envelope.type === type).length >= 2;
  await rx.waitFor((r) => twice('session.created')(r) && twice('session.ended')(r), 20_000, 'both retried');
  assertWellFormed(rx, [tenant.id]);
  const gap = (type) => {
    const [first, second] = rx.requests.filter((x) => x.envelope.type === type);
    assert.equal(first.envelope.id, second.envelope.id, `${type}: the retry has the same id`);
    assert.equal(first.answered.status, 429);
    return second.at - first.answered.at;
  };
  const honoured = gap('session.created');
  const scheduled = gap('session.ended');
  // Whole seconds: the retry comes no earlier than the answer plus 2 s (less a clock tick).
  assert.ok(honoured >= 1900, `the retry after Retry-After: 2 came ${honoured} ms after the 429`);
  assert.ok(honoured > scheduled, `Retry-After (${honoured} ms) overrides the schedule (${scheduled} ms without it)`);
});

test('secret rotation: during the overlap each of the old and the new secret verifies alone', { skip, timeout: 90_000 }, async (t) => {
  const st = await stack(t);
  const rx = await st.receiver();
  const tenant = await st.P.tenant();
  const ep = await st.hooks.create(tenant.id, { url: rx.url });
  rx.trust('old', ep.secret);
  const s1 = await st.P.session(tenant.id);
  await rx.waitFor(hasEvent(s1.id, 'session.created'), 15_000, 'an event before the rotation');

  const secret2 = await st.hooks.rotate(tenant.id, ep.id, 3600);
  assert.match(secret2, /^whsec_/);
  assert.notEqual(secret2, ep.secret, 'a new secret');
  rx.trust('new', secret2);
  const s2 = await st.P.session(tenant.id);
  await rx.waitFor(hasEvent(s2.id, 'session.created'), 15_000, 'an event after the rotation');

  const before = rx.requests.find((r) => r.envelope.session_id === s1.id);
  const after = rx.requests.find((r) => r.envelope.session_id === s2.id);
  assert.equal(before.verifiedBy.old, true, 'before: the old secret verifies');
  assert.equal(before.headers['webhook-signature'].split(' ').length, 1, 'before: one signature');
  assert.equal(after.headers['webhook-signature'].split(' ').length, 2, `after: two signatures: ${after.headers['webhook-signature']}`);
  assert.equal(after.verifiedBy.old, true, `after: the old secret alone verifies (${after.verifiedBy.old})`);
  assert.equal(after.verifiedBy.new, true, `after: the new secret alone verifies (${after.verifiedBy.new})`);
});

test('isolation: a tenant\'s events never reach another tenant\'s receiver', { skip, timeout: 90_000 }, async (t) => {
  const st = await stack(t);
  const rxA = await st.receiver();
  const rxB = await st.receiver();
  const A = await st.P.tenant();
  const B = await st.P.tenant();
  const epA = await st.hooks.create(A.id, { url: rxA.url });
  const epB = await st.hooks.create(B.id, { url: rxB.url });
  rxA.trust('A', epA.secret);
  rxB.trust('B', epB.secret);
  const sa = await st.P.session(A.id);
  const sb = await st.P.session(B.id);
  await st.P.endSession(A.id, sa.id);
  await st.P.endSession(B.id, sb.id);
  await rxA.waitFor(hasEvent(sa.id, 'session.ended'), 15_000, 'A\'s events');
  await rxB.waitFor(hasEvent(sb.id, 'session.ended'), 15_000, 'B\'s events');
  assertWellFormed(rxA, [A.id]);
  assertWellFormed(rxB, [B.id]);
  assert.deepEqual([...new Set(rxA.envelopes().map((e) => e.session_id))], [sa.id], 'A\'s receiver: A\'s session only');
  assert.deepEqual([...new Set(rxB.envelopes().map((e) => e.session_id))], [sb.id], 'B\'s receiver: B\'s session only');
  assert.ok(rxA.requests.every((r) => r.verifiedBy.A === true), 'signed with A\'s secret');
});

test('a reseller\'s endpoint with include_subtenants gets its sub-tenant\'s events with the sub-tenant\'s tenant_id', { skip, timeout: 90_000 }, async (t) => {
  const st = await stack(t);
  const rxR = await st.receiver();
  const rxOwn = await st.receiver();
  const R = await st.P.tenant();
  const sub = expectStatus(await st.P.call('POST', '/v1/tenants', { tenant: R.id, body: { name: uniq('sub') } }), 201, 'sub-tenant');
  const other = await st.P.tenant();
  const epR = await st.hooks.create(R.id, { url: rxR.url, include_subtenants: true });
  const epOwn = await st.hooks.create(R.id, { url: rxOwn.url }); // the reseller's own events only
  rxR.trust('R', epR.secret);
  rxOwn.trust('R', epOwn.secret);
  const ss = await st.P.session(sub.id);
  const so = await st.P.session(other.id);
  const sr = await st.P.session(R.id);
  await rxR.waitFor((r) => hasEvent(ss.id, 'session.created')(r) && hasEvent(sr.id, 'session.created')(r), 15_000, 'the sub-tenant\'s and the reseller\'s events');
  await rxOwn.waitFor(hasEvent(sr.id, 'session.created'), 15_000, 'the reseller\'s event');
  assertWellFormed(rxR, [R.id, sub.id]);
  assertWellFormed(rxOwn, [R.id]);
  const subEv = rxR.envelopes().find((e) => e.session_id === ss.id);
  assert.equal(subEv.tenant_id, sub.id, 'the envelope says whose event it is');
  assert.ok(!rxR.envelopes().some((e) => e.session_id === so.id), 'another tenant\'s events never arrive');
  assert.ok(!rxOwn.envelopes().some((e) => e.session_id === ss.id), 'without include_subtenants: no sub-tenant events');
});

test('SSRF: a server without --webhook-allow-private refuses a loopback receiver; nothing arrives', { skip, timeout: 90_000 }, async (t) => {
  const { 'webhook-allow-private': _, ...noPrivate } = FAST;
  const st = await stack(t, { flags: noPrivate });
  const rx = await st.receiver();
  const tenant = await st.P.tenant();
  // Written in SQL: the API refuses such a URL when the endpoint is made; the row stands for an
  // endpoint whose host name resolved elsewhere then and to loopback now (DNS rebinding): the
  // guard at connect time is what must hold.
  const ep = await st.hooks.insertEndpoint(tenant.id, { url: rx.url });
  rx.trust('endpoint', ep.secret);
  await st.P.session(tenant.id);
  const attempts = await eventually(async () => {
    const as = await st.hooks.attempts(tenant.id, ep.id);
    return as.length >= 2 && as;
  }, 15_000, 'two attempts recorded');
  for (const a of attempts) {
    assert.equal(a.status_code, null, 'no answer: the connection was never made');
    assert.match(String(a.error), /address|blocked|loopback|private|not allowed/i, `the error says the address was refused: ${a.error}`);
  }
  assert.equal(rx.requests.length, 0, 'nothing arrived at the loopback receiver');
});
