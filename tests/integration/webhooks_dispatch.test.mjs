// The webhook dispatcher (core/webhook/dispatch.c) against a real receiver on loopback that
// verifies every request with npm standardwebhooks. Endpoints are written straight into
// webhook_endpoints (their secrets sealed here as the server seals them: AES-256-GCM with the
// data key of the server's data dir, the endpoint's id as associated data), so these tests do not
// depend on the endpoints API; events come from real changes (an API key created through the
// API: api_key.created, written by the trigger in the same transaction).
//
// Needs DATABASE_URL and a built cobrowsed (COBROWSED), like tests/relay/ (scripts/test.sh).

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { createCipheriv, randomBytes } from 'node:crypto';
import { Webhook } from 'standardwebhooks';
import { startServer, assertCleanExit } from '../relay/lib/server.mjs';
import { DATABASE_URL, sql } from './lib/db.mjs';
import { api, expectStatus, uniq, HIGH_LIMITS } from './lib/client.mjs';

const skip = DATABASE_URL ? false : 'DATABASE_URL is not set (scripts/test.sh sets it)';

let srv;
let receiver;
let receiverUrl;
const behaviours = new Map(); // path -> (request count) -> {status, headers, body}
const received = new Map(); // path -> [{headers, body}]

async function waitFor(cond, what, timeoutMs = 20_000) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await cond();
    if (v) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50)); // polling a condition, bounded
  }
}

before(async () => {
  if (skip) return;
  receiver = http.createServer((req, res) => {
    const chunks = [];
    req.on('data', (c) => chunks.push(c));
    req.on('end', () => {
      const list = received.get(req.url) || [];
      list.push({ method: req.method, headers: req.headers, body: Buffer.concat(chunks).toString('utf8') });
      received.set(req.url, list);
      const b = behaviours.get(req.url);
      const r = b ? b(list.length) : { status: 200 };
      res.writeHead(r.status, r.headers || {});
      res.end(r.body || '');
    });
  });
  await new Promise((r) => receiver.listen(0, '127.0.0.1', r));
  receiverUrl = `http://127.0.0.1:${receiver.address().port}`;
  srv = await startServer({
    name: 'webhooks-dispatch',
    flags: { 'webhook-allow-private': '127.0.0.0/8', 'webhook-retry-schedule': '0,500ms,1s' },
  });
});

after(async () => {
  if (skip) return;
  const res = await srv.stop();
  receiver.close();
  assertCleanExit(res, 'cobrowsed (webhooks)');
  assert.doesNotMatch(res.log, /whsec_/, 'no secret in the server log');
});

function dataKey() {
  const hex = readFileSync(path.join(srv.dataDir, 'data.key'), 'utf8').trim();
  return Buffer.from(hex, 'hex');
}

function seal(secret, endpointId) {
  const nonce = randomBytes(12);
  const c = createCipheriv('aes-256-gcm', dataKey(), nonce);
  c.setAAD(Buffer.from(endpointId, 'utf8'));
  const ct = Buffer.concat([c.update(secret), c.final()]);
  return Buffer.concat([nonce, ct, c.getAuthTag()]).toString('hex');
}

async function newTenant() {
  const res = await api('POST', `${srv.baseUrl}/v1/tenants`,
    { token: srv.adminToken, body: { name: uniq('wh'), limits: { ...HIGH_LIMITS } }, spec: false });
  return expectStatus(res, 201, 'admin creates a tenant');
}

/** An endpoint row; returns {id, whsec, previousWhsec}. */
async function newEndpoint(tenantId, urlPath, { eventTypes = [], previous = false } = {}) {
  const [[id]] = await sql("SELECT ids_new('whe')");
  const secret = randomBytes(32);
  const prev = previous ? randomBytes(32) : null;
  await sql(`INSERT INTO webhook_endpoints (id, tenant_id, url, event_types, secret_sealed,
               previous_sealed, previous_until)
             VALUES (:'p1', :'p2', :'p3', COALESCE(string_to_array(NULLIF(:'p4', ''), ','), '{}'), decode(:'p5', 'hex'),
               decode(NULLIF(:'p6', ''), 'hex'), CASE WHEN :'p6' = '' THEN NULL ELSE now() + interval '1 hour' END)`,
  id, tenantId, receiverUrl + urlPath, eventTypes.join(','), seal(secret, id), prev ? seal(prev, id) : '');
  return {
    id,
    whsec: 'whsec_' + secret.toString('base64'),
    previousWhsec: prev ? 'whsec_' + prev.toString('base64') : null,
  };
}

/** An api_key.created event of tenantId (the trigger writes it with the key). */
async function keyCreated(tenantId) {
  const res = await api('POST', `${srv.baseUrl}/v1/api_keys`, {
    token: srv.adminToken, tenant: tenantId, body: { type: 'secret', name: uniq('k'), scopes: ['sessions:read'] }, spec: false,
  });
  return expectStatus(res, 201, 'create a key');
}

async function deliveries(endpointId) {
  return sql(`SELECT d.status, d.attempts, array_to_string(array_agg(a.status_code ORDER BY a.attempted_at), ','),
                     d.last_error
              FROM webhook_deliveries d LEFT JOIN webhook_attempts a ON a.delivery_id = d.id
              WHERE d.endpoint_id = :'p1' GROUP BY d.id ORDER BY d.id`, endpointId);
}

test('an event is delivered once, signed as standardwebhooks verifies, in the documented envelope', { skip }, async () => {
  const t = await newTenant();
  const ep = await newEndpoint(t.id, '/signed');
  const key = await keyCreated(t.id);
  const [req] = await waitFor(() => received.get('/signed'), 'the delivery');
  assert.equal(req.method, 'POST');
  assert.equal(req.headers['content-type'], 'application/json');
  assert.equal(req.headers['user-agent'], 'cobrowsed-webhooks/1');
  const payload = new Webhook(ep.whsec).verify(req.body, req.headers); // throws on a bad signature
  assert.deepEqual(Object.keys(JSON.parse(req.body)), ['id', 'type', 'timestamp', 'tenant_id', 'session_id', 'seq', 'data']);
  assert.equal(payload.type, 'api_key.created');
  assert.equal(payload.id, req.headers['webhook-id']);
  assert.match(payload.id, /^msg_/);
  assert.match(payload.timestamp, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/);
  assert.equal(payload.tenant_id, t.id);
  assert.equal(payload.session_id, null);
  assert.equal(payload.seq, null);
  assert.equal(payload.data.api_key.id, key.id);
  assert.ok(!req.body.includes(key.secret), 'never the key itself');
  await waitFor(async () => (await deliveries(ep.id))[0]?.[0] === 'succeeded', 'the delivery recorded');
  assert.deepEqual((await deliveries(ep.id))[0].slice(0, 3), ['succeeded', '1', '200']);
  assert.equal(received.get('/signed').length, 1);
});

test('during a rotation overlap both secrets sign, the new one first', { skip }, async () => {
  const t = await newTenant();
  const ep = await newEndpoint(t.id, '/rotated', { previous: true });
  await keyCreated(t.id);
  const [req] = await waitFor(() => received.get('/rotated'), 'the delivery');
  const sigs = req.headers['webhook-signature'].split(' ');
  assert.equal(sigs.length, 2);
  // Each secret alone verifies the request; the first signature is the new secret's.
  new Webhook(ep.whsec).verify(req.body, req.headers);
  new Webhook(ep.previousWhsec).verify(req.body, req.headers);
  new Webhook(ep.whsec).verify(req.body, { ...req.headers, 'webhook-signature': sigs[0] });
  assert.throws(() => new Webhook(ep.whsec).verify(req.body, { ...req.headers, 'webhook-signature': sigs[1] }));
});

test('failures are retried by the schedule until a success, which ends the failure run', { skip }, async () => {
  behaviours.set('/flaky', (n) => (n <= 2 ? { status: 500, body: 'down \u00e9'.repeat(200) } : { status: 204 }));
  const t = await newTenant();
  const ep = await newEndpoint(t.id, '/flaky');
  await keyCreated(t.id);
  await waitFor(async () => (await deliveries(ep.id))[0]?.[0] === 'succeeded', 'a success after retries');
  assert.deepEqual((await deliveries(ep.id))[0].slice(0, 3), ['succeeded', '3', '500,500,204']);
  const [[excerptLen, failing]] = await sql(`SELECT max(octet_length(a.response_excerpt)), e.failing_since IS NULL
    FROM webhook_attempts a JOIN webhook_deliveries d ON d.id = a.delivery_id
    JOIN webhook_endpoints e ON e.id = d.endpoint_id WHERE e.id = :'p1' GROUP BY e.failing_since`, ep.id);
  assert.ok(Number(excerptLen) <= 512 && Number(excerptLen) > 400, `an excerpt of at most 512 bytes: ${excerptLen}`);
  assert.equal(failing, 't', 'failing_since cleared by the success');
  // The same event id on every attempt: the receiver's dedupe key.
  const ids = new Set(received.get('/flaky').map((r) => r.headers['webhook-id']));
  assert.equal(ids.size, 1);
});

test('after the last attempt the delivery fails; a redirect is a failure, not followed', { skip }, async () => {
  behaviours.set('/moved', () => ({ status: 302, headers: { location: '/signed-elsewhere' } }));
  const t = await newTenant();
  const ep = await newEndpoint(t.id, '/moved');
  await keyCreated(t.id);
  await waitFor(async () => (await deliveries(ep.id))[0]?.[0] === 'failed', 'the delivery failed');
  assert.deepEqual((await deliveries(ep.id))[0].slice(0, 3), ['failed', '3', '302,302,302']);
  assert.equal(received.get('/signed-elsewhere'), undefined, 'no redirect followed');
  // The 302 is the receiver's answer (recorded as such), not a fetch error.
  const errors = await sql(`SELECT DISTINCT COALESCE(a.error, '-') FROM webhook_attempts a
    JOIN webhook_deliveries d ON d.id = a.delivery_id WHERE d.endpoint_id = :'p1'`, ep.id);
  assert.deepEqual(errors, [['-']]);
  const [[failing]] = await sql("SELECT failing_since IS NOT NULL FROM webhook_endpoints WHERE id = :'p1'", ep.id);
  assert.equal(failing, 't');
});

test('410 disables the endpoint, fails its pending deliveries and tells the tenant\'s other endpoint', { skip }, async () => {
  behaviours.set('/gone', () => ({ status: 410 }));
  const t = await newTenant();
  const gone = await newEndpoint(t.id, '/gone');
  const watcher = await newEndpoint(t.id, '/watcher', { eventTypes: ['webhook_endpoint.disabled'] });
  await keyCreated(t.id);
  const [req] = await waitFor(() => received.get('/watcher'), 'the disabled notice');
  const payload = new Webhook(watcher.whsec).verify(req.body, req.headers);
  assert.equal(payload.type, 'webhook_endpoint.disabled');
  assert.deepEqual(payload.data, { endpoint_id: gone.id, reason: 'gone' });
  const [[enabled, reason]] = await sql("SELECT enabled, disabled_reason FROM webhook_endpoints WHERE id = :'p1'", gone.id);
  assert.deepEqual([enabled, reason], ['f', 'gone']);
  assert.deepEqual((await deliveries(gone.id))[0].slice(0, 3), ['failed', '1', '410']);
  assert.equal(received.get('/gone').length, 1, 'nothing more to a disabled endpoint');
});

test('the dispatcher\'s metrics count outcomes', { skip }, async () => {
  const res = await fetch(`${srv.baseUrl}/metrics`);
  const text = await res.text();
  assert.match(text, /^webhook_deliveries_total\{outcome="succeeded"\} [1-9]/m);
  assert.match(text, /^webhook_deliveries_total\{outcome="gone"\} [1-9]/m);
  assert.match(text, /^webhook_in_flight \d+$/m);
});
