// Webhook delivery benchmark (not a test; scripts/bench-webhooks.sh runs it against a release
// build and a private PostgreSQL). Every request the receiver gets is verified: by default (a fast
// local receiver, BENCH_RECEIVER=fast) with node:crypto's native HMAC, and every 100th also with
// npm `standardwebhooks`; with BENCH_RECEIVER=reference, every request with `standardwebhooks`
// (tests/integration/lib/webhook_receiver.mjs). A failed verification is counted and printed.
//
// 1. drain: N events written by one SQL transaction (webhook_emit, as the triggers write them),
//    then the time from its commit until the receiver has every one: events/s from the outbox
//    to the receiver. Baseline in the same run: the same receiver fed the same bodies and
//    headers by a plain Node loop with as many requests in flight as the dispatcher's
//    --webhook-concurrency (the receiver's ceiling on this machine).
// 2. api: sessions created and ended through the REST API by C clients at once: deliveries/s at
//    the receiver, against the API's own rate for the same calls on a tenant with no endpoint
//    (no event is written for it), in the same run.
// 3. latency: sessions created through the API at a steady RATE/s for SECONDS: the delay from
//    the event's timestamp (written in its transaction) to its receipt, p50/p99; beside it, the
//    p50/p99 of the API calls that made them.
//
// Environment: COBROWSE_BASE_URL, COBROWSE_ADMIN_TOKEN, DATABASE_URL, COBROWSE_DATA_DIR (its
// data.key seals endpoint secrets when the REST API has no webhook routes yet), BENCH_N
// (default 5000), BENCH_API_SESSIONS (1000), BENCH_API_CONNS (16), BENCH_RATE (100),
// BENCH_SECONDS (10), BENCH_CONCURRENCY (the server's --webhook-concurrency, 32).
// Prints JSON lines: {"step": ..., ...}.

import { execFile } from 'node:child_process';
import { createCipheriv, createHmac, randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import { createRequire } from 'node:module';
import { startReceiver } from '../../tests/integration/lib/webhook_receiver.mjs';

// The tests' packages (tests/package.json) hold standardwebhooks.
const { Webhook } = createRequire(new URL('../../tests/package.json', import.meta.url))('standardwebhooks');

const env = process.env;
const BASE = env.COBROWSE_BASE_URL.replace(/\/+$/, '');
const ADMIN = env.COBROWSE_ADMIN_TOKEN;
const N = Number(env.BENCH_N || 5000);
const API_SESSIONS = Number(env.BENCH_API_SESSIONS || 1000);
const API_CONNS = Number(env.BENCH_API_CONNS || 16);
const RATE = Number(env.BENCH_RATE || 100);
const SECONDS = Number(env.BENCH_SECONDS || 10);
const CONCURRENCY = Number(env.BENCH_CONCURRENCY || 32);
// fast (default): the receiver checks every signature with node:crypto's native HMAC, exactly as
// Standard Webhooks defines it, and every 100th request also with npm standardwebhooks (whose
// pure-JS SHA-256 caps a receiver on this machine); reference: every request with standardwebhooks.
const RECEIVER = env.BENCH_RECEIVER || 'fast';
const LIMITS = {
  concurrent_sessions: 1000000, sessions_per_minute: 1000000, frames_per_second: 1000,
  bytes_per_second: 1048576, agents_per_session: 5, api_requests_per_second: 1000000,
};

const agent = new http.Agent({ keepAlive: true, maxSockets: 64 });
const out = (o) => console.log(JSON.stringify(o));
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

function psql(text, ...params) {
  const args = [env.DATABASE_URL, '-X', '-At', '-q', '-v', 'ON_ERROR_STOP=1', '-F', '\x1f'];
  params.forEach((p, i) => args.push('-v', `p${i + 1}=${p}`));
  return new Promise((resolve, reject) => {
    const child = execFile('psql', args, { timeout: 120_000, maxBuffer: 64 << 20 }, (err, stdout, stderr) => {
      if (err) { err.message += `\n${stderr}`; reject(err); return; }
      resolve(stdout.split('\n').filter((l) => l !== '').map((l) => l.split('\x1f')));
    });
    child.stdin.end(text);
  });
}

/** One request over a kept-alive connection -> {status, body, ms}. */
function request(method, url, { headers = {}, body } = {}) {
  return new Promise((resolve, reject) => {
    const t0 = performance.now();
    const data = body === undefined ? null : Buffer.from(typeof body === 'string' ? body : JSON.stringify(body));
    const req = http.request(url, {
      method, agent,
      headers: { ...(data ? { 'content-type': 'application/json', 'content-length': data.length } : {}), ...headers },
    }, (res) => {
      const chunks = [];
      res.on('data', (c) => chunks.push(c));
      res.on('end', () => {
        const text = Buffer.concat(chunks).toString('utf8');
        let parsed = text;
        try { parsed = JSON.parse(text); } catch { /* not JSON */ }
        resolve({ status: res.statusCode, body: parsed, ms: performance.now() - t0 });
      });
    });
    req.on('error', reject);
    req.end(data);
  });
}

async function call(method, p, tenant, body) {
  const headers = { authorization: `Bearer ${ADMIN}` };
  if (tenant) headers['cobrowse-tenant'] = tenant;
  const r = await request(method, BASE + p, { headers, body });
  if (r.status >= 300) throw new Error(`${method} ${p}: ${r.status} ${JSON.stringify(r.body).slice(0, 300)}`);
  return r;
}

const tenant = async () => (await call('POST', '/v1/tenants', null, { name: `bench-${randomBytes(4).toString('hex')}`, limits: LIMITS })).body;

function seal(plain, aad) {
  const key = Buffer.from(readFileSync(path.join(env.COBROWSE_DATA_DIR, 'data.key'), 'utf8').trim(), 'hex');
  const nonce = randomBytes(12);
  const c = createCipheriv('aes-256-gcm', key, nonce);
  c.setAAD(Buffer.from(aad));
  return Buffer.concat([nonce, c.update(plain), c.final(), c.getAuthTag()]);
}

/** An endpoint of the tenant: through the API, or in SQL when it has no webhook routes yet. */
async function endpoint(tenantId, url) {
  const r = await request('POST', `${BASE}/v1/webhook_endpoints`, {
    headers: { authorization: `Bearer ${ADMIN}`, 'cobrowse-tenant': tenantId }, body: { url },
  });
  if (r.status === 201) return r.body.secret;
  if (r.status !== 404) throw new Error(`create endpoint: ${r.status} ${JSON.stringify(r.body)}`);
  const [[id]] = await psql(`SELECT ids_new('whe')`);
  const raw = randomBytes(32);
  await psql(`INSERT INTO webhook_endpoints (id, tenant_id, url, secret_sealed) VALUES (:'p1', :'p2', :'p3', decode(:'p4', 'hex'))`,
    id, tenantId, url, seal(raw, id).toString('hex'));
  return `whsec_${raw.toString('base64')}`;
}

/** A fast local receiver: keep-alive, native HMAC on every request, standardwebhooks on every
 * 100th (a mismatch between the two counts as a failure). Same shape as receiver()'s result. */
async function fastReceiver() {
  const st = { verified: 0, failed: 0, ids: new Set(), delays: [], first: 0, last: 0, waiters: new Set() };
  let key = null;
  let reference = null;
  let n = 0;
  const server = http.createServer((req, res) => {
    const chunks = [];
    req.on('data', (c) => chunks.push(c));
    req.on('end', () => {
      const at = Date.now();
      const body = Buffer.concat(chunks).toString('utf8');
      const id = req.headers['webhook-id'];
      const ts = req.headers['webhook-timestamp'];
      const want = `v1,${createHmac('sha256', key).update(`${id}.${ts}.${body}`).digest('base64')}`;
      let ok = String(req.headers['webhook-signature'] || '').split(' ').includes(want) &&
        Math.abs(Date.now() / 1000 - Number(ts)) < 300;
      if (ok && n++ % 100 === 0) {
        try { reference.verify(body, req.headers); } catch { ok = false; }
      }
      if (ok) st.verified++; else st.failed++;
      const env2 = JSON.parse(body);
      if (!st.ids.has(env2.id)) {
        st.ids.add(env2.id);
        st.delays.push(at - Date.parse(env2.timestamp));
      }
      if (!st.first) st.first = at;
      st.last = at;
      res.writeHead(204).end();
      for (const w of [...st.waiters]) w();
    });
  });
  server.keepAliveTimeout = 30_000;
  await new Promise((r) => server.listen(0, '127.0.0.1', r));
  st.rx = {
    url: `http://127.0.0.1:${server.address().port}/hooks`,
    trust(name, secret) {
      key = Buffer.from(secret.slice('whsec_'.length), 'base64');
      reference = new Webhook(secret);
    },
    close: () => new Promise((r) => { server.closeAllConnections(); server.close(() => r()); }),
  };
  st.until = (count, ms) => new Promise((resolve, reject) => {
    const timer = setTimeout(() => { st.waiters.delete(check); reject(new Error(`${count} events not reached in ${ms} ms (${st.ids.size})`)); }, ms);
    const check = () => {
      if (st.ids.size < count) return;
      clearTimeout(timer);
      st.waiters.delete(check);
      resolve();
    };
    st.waiters.add(check);
    check();
  });
  return st;
}

/** A receiver that counts verified requests and records each event's delay (receipt - timestamp). */
async function receiver() {
  if (RECEIVER === 'fast') return fastReceiver();
  const rx = await startReceiver();
  const st = { rx, verified: 0, failed: 0, ids: new Set(), delays: [], first: 0, last: 0 };
  rx.answer((rec) => {
    if (rec.verified) st.verified++; else st.failed++;
    if (rec.envelope && !st.ids.has(rec.envelope.id)) {
      st.ids.add(rec.envelope.id);
      st.delays.push(rec.at - Date.parse(rec.envelope.timestamp));
    }
    if (!st.first) st.first = rec.at;
    st.last = rec.at;
    rx.requests.length = 0; // keep memory flat: the counts above are what the bench needs
    return {};
  });
  st.until = (n, ms) => rx.waitFor(() => st.ids.size >= n, ms, `${n} events`);
  return st;
}

const pct = (xs, p) => {
  if (!xs.length) return null;
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))];
};

/** Runs fn(i) for i in 0..n-1 with `conns` at once. */
async function pool(n, conns, fn) {
  let next = 0;
  await Promise.all(Array.from({ length: conns }, async () => {
    while (next < n) await fn(next++);
  }));
}

async function drain() {
  const t = await tenant();
  const st = await receiver();
  st.rx.trust('endpoint', await endpoint(t.id, st.rx.url));
  const t0 = Date.now();
  await psql(`SELECT count(webhook_emit(:'p1', NULL, 'webhook.test', jsonb_build_object('message', 'bench ' || i)))
    FROM generate_series(1, :'p2'::int) i`, t.id, N);
  const committed = Date.now();
  await st.until(N, 300_000);
  const secs = (st.last - committed) / 1000;
  out({ step: 'drain', events: N, write_ms: committed - t0, seconds: secs, per_second: N / secs, verified: st.verified, failed: st.failed });

  // Baseline: the same bodies and signatures, POSTed by a plain loop, CONCURRENCY in flight.
  const key = randomBytes(32);
  const base = await receiver();
  base.rx.trust('endpoint', `whsec_${key.toString('base64')}`);
  const bodies = (await psql(`SELECT id, json_build_object('id', id, 'type', type, 'timestamp', created_at,
    'tenant_id', tenant_id, 'session_id', session_id, 'seq', seq, 'data', data)::text FROM webhook_events WHERE tenant_id = :'p1'`, t.id));
  const b0 = Date.now();
  await pool(bodies.length, CONCURRENCY, async (i) => {
    const [id, body] = bodies[i];
    const ts = Math.floor(Date.now() / 1000);
    const sig = createHmac('sha256', key).update(`${id}.${ts}.${body}`).digest('base64');
    await request('POST', base.rx.url, { headers: { 'webhook-id': id, 'webhook-timestamp': String(ts), 'webhook-signature': `v1,${sig}` }, body });
  });
  const bsecs = (Date.now() - b0) / 1000;
  out({ step: 'drain_baseline', events: bodies.length, seconds: bsecs, per_second: bodies.length / bsecs, verified: base.verified, failed: base.failed });
  await st.rx.close();
  await base.rx.close();
}

async function viaApi() {
  const plain = await tenant();
  const a0 = performance.now();
  await pool(API_SESSIONS, API_CONNS, async () => {
    const s = (await call('POST', '/v1/sessions', plain.id, {})).body;
    await call('POST', `/v1/sessions/${s.id}/end`, plain.id);
  });
  const apiSecs = (performance.now() - a0) / 1000;
  out({ step: 'api_baseline', sessions: API_SESSIONS, seconds: apiSecs, calls_per_second: (2 * API_SESSIONS) / apiSecs });

  const t = await tenant();
  const st = await receiver();
  st.rx.trust('endpoint', await endpoint(t.id, st.rx.url));
  const w0 = performance.now();
  const start = Date.now();
  await pool(API_SESSIONS, API_CONNS, async () => {
    const s = (await call('POST', '/v1/sessions', t.id, {})).body;
    await call('POST', `/v1/sessions/${s.id}/end`, t.id);
  });
  const callSecs = (performance.now() - w0) / 1000;
  await st.until(2 * API_SESSIONS, 300_000);
  const secs = (st.last - start) / 1000;
  out({ step: 'api', sessions: API_SESSIONS, events: 2 * API_SESSIONS, calls_per_second: (2 * API_SESSIONS) / callSecs,
    seconds_to_last_delivery: secs, deliveries_per_second: (2 * API_SESSIONS) / secs, verified: st.verified, failed: st.failed });
  await st.rx.close();
}

async function latency() {
  const t = await tenant();
  const st = await receiver();
  st.rx.trust('endpoint', await endpoint(t.id, st.rx.url));
  const n = RATE * SECONDS;
  const calls = [];
  const t0 = performance.now();
  const pending = [];
  for (let i = 0; i < n; i++) {
    const due = t0 + (i * 1000) / RATE;
    const wait = due - performance.now();
    if (wait > 0) await sleep(wait); // pacing the load generator, not waiting for a result
    pending.push(call('POST', '/v1/sessions', t.id, {}).then((r) => calls.push(r.ms)));
  }
  await Promise.all(pending);
  const offered = n / ((performance.now() - t0) / 1000);
  await st.until(n, 120_000);
  out({ step: 'latency', rate: RATE, offered_per_second: offered, events: n, delay_p50_ms: pct(st.delays, 50),
    delay_p99_ms: pct(st.delays, 99), delay_max_ms: Math.max(...st.delays), api_p50_ms: pct(calls, 50),
    api_p99_ms: pct(calls, 99), verified: st.verified, failed: st.failed });
  await st.rx.close();
}

const steps = (env.BENCH_STEPS || 'drain,api,latency').split(',');
if (steps.includes('drain')) await drain();
if (steps.includes('api')) await viaApi();
if (steps.includes('latency')) await latency();
agent.destroy();
