// Helpers of the webhook delivery tests (webhooks_delivery.test.mjs, webhooks_nodes.test.mjs):
// a database and a server of each test's own (dispatchers share the deliveries of their database,
// FOR UPDATE SKIP LOCKED, so a server of another file would take these tests' deliveries),
// endpoints through the REST API (or written in SQL, sealed with the server's data key, where a
// test needs a row the API would refuse), and checks of what a receiver got.

import assert from 'node:assert/strict';
import { execFile, execFileSync } from 'node:child_process';
import { createCipheriv, randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { startServer, assertCleanExit, COBROWSED } from '../../relay/lib/server.mjs';
import { platform } from '../../relay/lib/platform.mjs';
import { expectStatus } from './client.mjs';
import { startReceiver } from './webhook_receiver.mjs';


// The dispatcher's options name its presence in the binary (it is built beside these tests).
export function dispatcherMissing() {
  try {
    const help = execFileSync(COBROWSED, ['--help'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
    return !help.includes('--webhook-retry-schedule');
  } catch (e) {
    return !String(e.stdout || '').includes('--webhook-retry-schedule');
  }
}
export const skip = !process.env.DATABASE_URL ? 'DATABASE_URL is not set (scripts/test.sh sets it)'
  : dispatcherMissing() ? `${COBROWSED} has no webhook dispatcher (--webhook-retry-schedule)` : false;

// Short retries so that a test sees several attempts in a second or two.
export const FAST = {
  'webhook-allow-private': '127.0.0.0/8',
  'webhook-retry-schedule': '0,300ms,600ms,1s,1s,1s,1s,1s,1s,1s',
};

// ---------------------------------------------------------------------------------------------
// A database of the test's own

/** psql(url, text, ...params) -> rows (arrays of strings); params bound as :'p1', :'p2'... */
export function psql(url, text, ...params) {
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
export async function freshDatabase() {
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
export async function stack(t, { flags = FAST } = {}) {
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
export function seal(keyHex, plain, aad) {
  const nonce = randomBytes(12);
  const c = createCipheriv('aes-256-gcm', Buffer.from(keyHex, 'hex'), nonce);
  c.setAAD(Buffer.from(aad, 'utf8'));
  return Buffer.concat([nonce, c.update(plain), c.final(), c.getAuthTag()]);
}

export function webhooks(st) {
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
export function assertWellFormed(rx, tenantIds) {
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
export function sessionEvents(rx, sessionId) {
  const byId = new Map();
  for (const e of rx.envelopes()) {
    if (e.session_id !== sessionId) continue;
    const seen = byId.get(e.id);
    if (seen) assert.deepEqual(e, seen, `event ${e.id}: every delivery of one event carries the same envelope`);
    else byId.set(e.id, e);
  }
  return [...byId.values()].sort((a, b) => a.seq - b.seq);
}

export const hasEvent = (sessionId, type) => (rx) => rx.envelopes().some((e) => e.session_id === sessionId && e.type === type);

/** Every event of the session up to session.ended arrived (deliveries run concurrently: the
 * last event may arrive before the ones just before it). */
export const wholeSession = (sessionId) => (rx) => {
  const evs = rx.envelopes().filter((e) => e.session_id === sessionId);
  const end = evs.find((e) => e.type === 'session.ended');
  return end && new Set(evs.map((e) => e.seq)).size === end.seq;
};

