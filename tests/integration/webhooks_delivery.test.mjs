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
import { execFile, execFileSync } from 'node:child_process';
import { createCipheriv, randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { startServer, assertCleanExit, COBROWSED } from '../relay/lib/server.mjs';
import { platform, eventually } from '../relay/lib/platform.mjs';
import { connectVisitor, connectAgent } from '../relay/lib/relay.mjs';
import { expectStatus, uniq } from './lib/client.mjs';
import { startReceiver } from './lib/webhook_receiver.mjs';

// The dispatcher's options name its presence in the binary (it is built beside these tests).
function dispatcherMissing() {
  try {
    const help = execFileSync(COBROWSED, ['--help'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
    return !help.includes('--webhook-retry-schedule');
  } catch (e) {
    return !String(e.stdout || '').includes('--webhook-retry-schedule');
  }
}
const skip = !process.env.DATABASE_URL ? 'DATABASE_URL is not set (scripts/test.sh sets it)'
  : dispatcherMissing() ? `${COBROWSED} has no webhook dispatcher (--webhook-retry-schedule)` : false;

// Short retries so that a test sees several attempts in a second or two.
const FAST = {
  'webhook-allow-private': '127.0.0.0/8',
  'webhook-retry-schedule': '0,300ms,600ms,1s,1s,1s,1s,1s,1s,1s',
};

// ---------------------------------------------------------------------------------------------
// A database of the test's own

/** psql(url, text, ...params) -> rows (arrays of strings); params bound as :'p1', :'p2'... */
function psql(url, text, ...params) {
  const args = [url, '-X', '-At', '-q', '-v', 'ON_ERROR_STOP=1', '-F', '\x1f'];
  params.forEach((p, i) => args.push('-v', `p${i + 1}=${p}`));
  return new Promise((resolve, reject) => {
    const child = execFile('psql', args, { timeout: 30_000, maxBuffer: 64 << 20 }, (err, stdout, stderr) => {
      if (err) { err.message += `\nstderr: ${stderr}`; reject(err); return; }
      resolve(stdout.split('\n').filter((l) => l !== '').map((l) => l.split('\x1f')));
    });
    child.stdin.end(text);
  });
}

/** A new empty database beside $DATABASE_URL's -> {url, drop()}. The server migrates it. */
async function freshDatabase() {
  const base = process.env.DATABASE_URL;
  const name = `wh_${process.pid}_${randomBytes(4).toString('hex')}`;
  const m = base.match(/^(postgres(?:ql)?:\/\/[^/]*\/)([^?]*)(.*)$/);
  assert.ok(m, `DATABASE_URL is not a postgresql:// URL with a database name: ${base}`);
  await psql(base, `CREATE DATABASE ${name}`);
  return {
    url: `${m[1]}${name}${m[3]}`,
    drop: () => psql(base, `DROP DATABASE IF EXISTS ${name} WITH (FORCE)`),
  };
}

/**
 * stack(t, {flags}) -> {srv, P, db, hooks, restart(), receiver()}: a database and a server of
 * the test's own, everything stopped and dropped when the test ends (a sanitizer report or an
 * unclean exit fails the test).
 */
async function stack(t, { flags = FAST } = {}) {
  const db = await freshDatabase();
  const receivers = [];
  const st = { db, flags, srv: null, killed: [] };
  t.after(async () => {
    for (const rx of receivers) await rx.close();
    let res = null;
    if (st.srv) res = await st.srv.stop();
    await db.drop();
    if (res) assertCleanExit(res, 'webhook test server');
  });
  const start = (reuse = null) => startServer({ flags, env: { DATABASE_URL: db.url }, name: 'webhooks', reuse });
  st.srv = await start();
  st.P = platform(st.srv);
  st.hooks = webhooks(st);
  /** kill -9 of the server (its data dir is kept for restart()). */
  st.kill = async () => {
    st.srv.child.kill('SIGKILL');
    await st.srv.exited;
  };
  /** A new server on the same database, data dir, secrets and admin token. */
  st.restart = async () => {
    st.srv = await start(st.srv);
    st.P = platform(st.srv);
  };
  st.receiver = async (opts) => { const rx = await startReceiver(opts); receivers.push(rx); return rx; };
  return st;
}

// ---------------------------------------------------------------------------------------------
// Endpoints: through the API, or in SQL where the API does not exist yet

/** AES-256-GCM as core/base/crypto.h crypto_seal: nonce (12) || ciphertext || tag (16). */
function seal(keyHex, plain, aad) {
  const nonce = randomBytes(12);
  const c = createCipheriv('aes-256-gcm', Buffer.from(keyHex, 'hex'), nonce);
  c.setAAD(Buffer.from(aad, 'utf8'));
  return Buffer.concat([nonce, c.update(plain), c.final(), c.getAuthTag()]);
}

function webhooks(st) {
  let hasApi;
  const call = (...a) => st.P.call(...a);
  const dataKey = () => readFileSync(path.join(st.srv.dataDir, 'data.key'), 'utf8').trim();
  async function api(tenantId) {
    if (hasApi === undefined) {
      const r = await call('GET', '/v1/webhook_endpoints', { tenant: tenantId, spec: false });
      hasApi = !(r.status === 404 && r.body && r.body.code === 'route_not_found');
    }
    return hasApi;
  }
  /** An endpoint row written in SQL, as the API writes it. -> {id, secret, ...} */
  async function insertEndpoint(tenantId, { url, event_types = [], include_subtenants = false }) {
    const [[id]] = await psql(st.db.url, `SELECT ids_new('whe')`);
    const raw = randomBytes(32);
    const sealed = seal(dataKey(), raw, id).toString('hex');
    await psql(st.db.url, `INSERT INTO webhook_endpoints (id, tenant_id, url, event_types, include_subtenants, secret_sealed)
      VALUES (:'p1', :'p2', :'p3', :'p4'::text[], :'p5'::boolean, decode(:'p6', 'hex'))`,
    id, tenantId, url, `{${event_types.join(',')}}`, include_subtenants, sealed);
    return { id, url, event_types, include_subtenants, enabled: true, disabled_reason: null, secret: `whsec_${raw.toString('base64')}` };
  }
  return {
    insertEndpoint,
    usesApi: () => hasApi === true,
    async create(tenantId, body) {
      if (!(await api(tenantId))) return insertEndpoint(tenantId, body);
      const ep = expectStatus(await call('POST', '/v1/webhook_endpoints', { tenant: tenantId, body }), 201, 'create endpoint');
      assert.match(ep.secret, /^whsec_[A-Za-z0-9+/]{43}=$/, 'the secret: whsec_ + base64 of 32 bytes');
      return ep;
    },
    async get(tenantId, id) {
      if (await api(tenantId)) return expectStatus(await call('GET', `/v1/webhook_endpoints/${id}`, { tenant: tenantId }), 200, 'get endpoint');
      const [[enabled, reason]] = await psql(st.db.url, `SELECT enabled, coalesce(disabled_reason, '') FROM webhook_endpoints WHERE id = :'p1'`, id);
      return { id, enabled: enabled === 't', disabled_reason: reason || null };
    },
    /** A new secret, the previous one signing beside it for overlapSeconds. -> whsec_... */
    async rotate(tenantId, id, overlapSeconds) {
      if (await api(tenantId)) {
        const r = await call('POST', `/v1/webhook_endpoints/${id}/rotate_secret`, { tenant: tenantId, body: { overlap_seconds: overlapSeconds } });
        assert.ok(r.status === 200 || r.status === 201, `rotate_secret: ${r.status} ${r.text.slice(0, 300)}`);
        return r.body.secret;
      }
      const raw = randomBytes(32);
      await psql(st.db.url, `UPDATE webhook_endpoints SET previous_sealed = secret_sealed,
        previous_until = now() + make_interval(secs => :'p3'::int), secret_sealed = decode(:'p2', 'hex') WHERE id = :'p1'`,
      id, seal(dataKey(), raw, id).toString('hex'), overlapSeconds);
      return `whsec_${raw.toString('base64')}`;
    },
    /** Every attempt of the endpoint's deliveries: [{delivery_id, status_code, error}]. */
    async attempts(tenantId, id) {
      if (await api(tenantId)) {
        const list = expectStatus(await call('GET', `/v1/webhook_endpoints/${id}/deliveries`, { tenant: tenantId }), 200, 'list deliveries');
        const out = [];
        for (const d of list.data) {
          const full = expectStatus(await call('GET', `/v1/webhook_deliveries/${d.id}`, { tenant: tenantId }), 200, 'get delivery');
          for (const a of full.attempts) out.push({ delivery_id: d.id, status_code: a.status_code ?? null, error: a.error ?? null });
        }
        return out;
      }
      const rows = await psql(st.db.url, `SELECT d.id, coalesce(a.status_code::text, ''), coalesce(a.error, '')
        FROM webhook_attempts a JOIN webhook_deliveries d ON d.id = a.delivery_id WHERE d.endpoint_id = :'p1'`, id);
      return rows.map(([d, s, e]) => ({ delivery_id: d, status_code: s ? Number(s) : null, error: e || null }));
    },
    /** The endpoint's deliveries, from the database: [{id, event_id, status, attempts}]. */
    async deliveries(id) {
      const rows = await psql(st.db.url, `SELECT id, event_id, status, attempts FROM webhook_deliveries WHERE endpoint_id = :'p1' ORDER BY id`, id);
      return rows.map(([did, ev, status, attempts]) => ({ id: did, event_id: ev, status, attempts: Number(attempts) }));
    },
    /** The ids of the events of these tenants in the outbox. */
    async eventIds(...tenantIds) {
      const rows = await psql(st.db.url, `SELECT id FROM webhook_events WHERE tenant_id = ANY (:'p1'::text[]) ORDER BY id`, `{${tenantIds.join(',')}}`);
      return rows.map(([x]) => x);
    },
  };
}

// ---------------------------------------------------------------------------------------------
// What arrived

/** Asserts what every request must be: verified, headers of the spec, id = webhook-id. */
function assertWellFormed(rx, tenantIds) {
  assert.ok(rx.requests.length > 0, 'something arrived');
  for (const r of rx.requests) {
    const what = `${r.envelope ? r.envelope.type : r.body.slice(0, 80)}`;
    assert.equal(r.verified, true, `${what}: standardwebhooks verifies it (${JSON.stringify(r.verifiedBy)})`);
    assert.equal(r.method, 'POST', what);
    assert.match(String(r.headers['content-type']), /^application\/json/, `${what}: content-type`);
    assert.equal(r.headers['user-agent'], 'cobrowsed-webhooks/1', `${what}: user-agent`);
    assert.ok(r.envelope, `${what}: the body is JSON`);
    assert.equal(r.headers['webhook-id'], r.envelope.id, `${what}: webhook-id is the event's id`);
    assert.match(r.envelope.id, /^msg_/, what);
    assert.ok(!Number.isNaN(Date.parse(r.envelope.timestamp)), `${what}: timestamp`);
    if (tenantIds) assert.ok(tenantIds.includes(r.envelope.tenant_id), `${what}: tenant_id ${r.envelope.tenant_id} not in ${tenantIds}`);
  }
}

/** The distinct events (by id) of one session, sorted by seq. */
function sessionEvents(rx, sessionId) {
  const byId = new Map();
  for (const e of rx.envelopes()) {
    if (e.session_id !== sessionId) continue;
    const seen = byId.get(e.id);
    if (seen) assert.deepEqual(e, seen, `event ${e.id}: every delivery of one event carries the same envelope`);
    else byId.set(e.id, e);
  }
  return [...byId.values()].sort((a, b) => a.seq - b.seq);
}

const hasEvent = (sessionId, type) => (rx) => rx.envelopes().some((e) => e.session_id === sessionId && e.type === type);

/** Every event of the session up to session.ended arrived (deliveries run concurrently: the
 * last event may arrive before the ones just before it). */
const wholeSession = (sessionId) => (rx) => {
  const evs = rx.envelopes().filter((e) => e.session_id === sessionId);
  const end = evs.find((e) => e.type === 'session.ended');
  return end && new Set(evs.map((e) => e.seq)).size === end.seq;
};

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
