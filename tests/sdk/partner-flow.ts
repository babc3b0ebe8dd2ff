// A partner's whole integration, written against the client generated from openapi/openapi.yaml
// (npm run sdk:generate && npm run sdk:build && npm run sdk:test, from tests/).
//
// env: COBROWSE_BASE_URL (e.g. http://127.0.0.1:8080), COBROWSE_ADMIN_TOKEN (adm_...)
//
// The platform admin creates a reseller and a secret key for it; the reseller's key creates a
// sub-tenant and a key for it; the sub-tenant's key creates a session, issues an agent token,
// lists sessions, finds the session by its join code and ends it. Every answer is checked
// (status and fields). At the end the admin deletes the reseller, which must cascade.
// Prints one line per check and "sdk partner flow: N passed, M failed"; exits 1 on a failure.
import { randomUUID } from 'node:crypto';
import { isDeepStrictEqual } from 'node:util';
import { createClient, createConfig, type Client } from './generated/client/index.js';
import {
  createAgentToken,
  createApiKey,
  createSession,
  createTenant,
  deleteTenant,
  endSession,
  getSession,
  getSessionByCode,
  listSessions,
} from './generated/sdk.gen.js';
import type { Problem, Scope } from './generated/types.gen.js';

const BASE_URL = process.env.COBROWSE_BASE_URL?.replace(/\/+$/, '');
const ADMIN_TOKEN = process.env.COBROWSE_ADMIN_TOKEN;
if (!BASE_URL || !ADMIN_TOKEN) {
  console.error('sdk partner flow: set COBROWSE_BASE_URL and COBROWSE_ADMIN_TOKEN');
  process.exit(2);
}

const ALL_SCOPES: Scope[] = [
  'tenants:read',
  'tenants:write',
  'api_keys:read',
  'api_keys:write',
  'sessions:read',
  'sessions:write',
  'agent_tokens:write',
];

let passed = 0;
let failed = 0;
const cleanups: Array<() => Promise<unknown>> = [];

function clientFor(token: string): Client {
  return createClient(createConfig({ baseUrl: BASE_URL, auth: token }));
}

async function finish(): Promise<never> {
  for (const undo of cleanups.reverse()) {
    try {
      await undo();
    } catch (e) {
      console.error(`  (cleanup failed: ${(e as Error).message})`);
    }
  }
  console.log(`sdk partner flow: ${passed} passed, ${failed} failed`);
  process.exit(failed === 0 ? 0 : 1);
}

// One named check. The flow cannot go on after a failed step (later steps need its result), so a
// failure cleans up, prints the summary and exits.
async function step<T>(name: string, fn: () => Promise<T>): Promise<T> {
  try {
    const result = await fn();
    passed++;
    console.log(`ok ${passed} - ${name}`);
    return result;
  } catch (e) {
    failed++;
    console.log(`not ok ${passed + failed} - ${name}\n  ${(e as Error).message.replace(/\n/g, '\n  ')}`);
    return finish();
  }
}

class CheckError extends Error {}

function check(cond: unknown, message: string): asserts cond {
  if (!cond) throw new CheckError(message);
}

// Deep equality; key order does not matter.
function eq(actual: unknown, expected: unknown, field: string): void {
  check(isDeepStrictEqual(actual, expected), `${field}: expected ${JSON.stringify(expected)}, got ${JSON.stringify(actual)}`);
}

function matches(value: unknown, re: RegExp, field: string): void {
  check(typeof value === 'string' && re.test(value), `${field}: expected to match ${re}, got ${JSON.stringify(value)}`);
}

function isTime(value: unknown, field: string): number {
  check(typeof value === 'string' && !Number.isNaN(Date.parse(value)), `${field}: expected a date-time, got ${JSON.stringify(value)}`);
  return Date.parse(value as string);
}

type Answer<T> = { data: T | undefined; error: unknown; response: Response };

// The client resolves without `response` when the request itself failed (refused, reset, ...).
function answered(res: Answer<unknown>, what: string): void {
  if (res.response) return;
  const e = res.error as { message?: string; cause?: { message?: string } } | undefined;
  throw new CheckError(`${what}: no HTTP answer from ${BASE_URL}: ${e?.cause?.message ?? e?.message ?? String(e)}`);
}

// Checks the status and the headers every answer must carry; returns the parsed body.
function expectOk<T>(res: Answer<T>, status: number, what: string, opts: { rateLimited?: boolean } = {}): T {
  answered(res, what);
  const got = res.response.status;
  check(got === status, `${what}: expected HTTP ${status}, got ${got}: ${JSON.stringify(res.error ?? res.data)}`);
  check(res.response.headers.get('x-request-id'), `${what}: no X-Request-Id header`);
  if (opts.rateLimited) {
    for (const h of ['RateLimit-Limit', 'RateLimit-Remaining', 'RateLimit-Reset']) {
      matches(res.response.headers.get(h), /^[0-9]+$/, `${what}: header ${h}`);
    }
  }
  check(res.data !== undefined, `${what}: no body`);
  return res.data as T;
}

function expectProblem(res: Answer<unknown>, status: number, code: string, what: string): Problem {
  answered(res, what);
  const got = res.response.status;
  check(got === status, `${what}: expected HTTP ${status} ${code}, got ${got}: ${JSON.stringify(res.error ?? res.data)}`);
  const ct = res.response.headers.get('content-type') ?? '';
  check(ct.startsWith('application/problem+json'), `${what}: expected application/problem+json, got ${JSON.stringify(ct)}`);
  const p = res.error as Problem;
  eq(p?.code, code, `${what}: code`);
  eq(p?.status, status, `${what}: status`);
  check(typeof p.request_id === 'string' && p.request_id === res.response.headers.get('x-request-id'),
    `${what}: request_id ${JSON.stringify(p.request_id)} differs from X-Request-Id ${JSON.stringify(res.response.headers.get('x-request-id'))}`);
  return p;
}

const run = randomUUID().slice(0, 8);
const admin = clientFor(ADMIN_TOKEN);

// 1. The platform admin creates a reseller.
const reseller = await step('admin creates a reseller tenant', async () => {
  const t = expectOk(await createTenant({ client: admin, body: { name: `sdk reseller ${run}` } }), 201, 'createTenant');
  matches(t.id, /^ten_[0-9A-Za-z]+$/, 'tenant.id');
  eq(t.object, 'tenant', 'tenant.object');
  eq(t.parent_id, null, 'tenant.parent_id');
  eq(t.name, `sdk reseller ${run}`, 'tenant.name');
  eq(t.status, 'active', 'tenant.status');
  for (const [k, v] of Object.entries(t.limits)) check(Number.isInteger(v) && v >= 1, `tenant.limits.${k}: ${v}`);
  const created = isTime(t.created_at, 'tenant.created_at');
  check(Math.abs(created - Date.now()) < 5 * 60_000, `tenant.created_at ${t.created_at} is not now`);
  cleanups.push(() => deleteTenant({ client: admin, path: { id: t.id } }));
  return t;
});

// 2. ... and a secret key for it, acting as the reseller through Cobrowse-Tenant.
const resellerKey = await step('admin creates a secret key for the reseller (Cobrowse-Tenant)', async () => {
  const k = expectOk(
    await createApiKey({
      client: admin,
      headers: { 'Cobrowse-Tenant': reseller.id },
      body: { type: 'secret', name: `sdk reseller key ${run}`, scopes: ALL_SCOPES },
    }),
    201,
    'createApiKey',
  );
  matches(k.id, /^key_[0-9A-Za-z]+$/, 'api_key.id');
  eq(k.object, 'api_key', 'api_key.object');
  eq(k.tenant_id, reseller.id, 'api_key.tenant_id');
  eq(k.type, 'secret', 'api_key.type');
  eq(k.prefix, 'sk_', 'api_key.prefix');
  matches(k.secret, /^sk_.{52}$/, 'api_key.secret');
  eq(k.last4, k.secret.slice(-4), 'api_key.last4');
  eq([...k.scopes].sort(), [...ALL_SCOPES].sort(), 'api_key.scopes');
  eq(k.revoked_at, null, 'api_key.revoked_at');
  eq(k.expires_at, null, 'api_key.expires_at');
  return k;
});
const resellerApi = clientFor(resellerKey.secret);

// 3. The reseller's key creates a customer (sub-tenant) with its own settings.
const subLimit = Math.max(1, Math.floor(reseller.limits.concurrent_sessions / 2));
const sub = await step('reseller key creates a sub-tenant', async () => {
  const t = expectOk(
    await createTenant({
      client: resellerApi,
      body: {
        name: `sdk customer ${run}`,
        allowed_origins: ['https://www.customer.example'],
        branding: { primary_color: '#0055ff' },
        masking: { selectors: ['.card-number'], mask_all_inputs: true },
        permissions: { remote_control: 'ask' },
        limits: { concurrent_sessions: subLimit },
      },
    }),
    201,
    'createTenant (sub-tenant)',
    { rateLimited: true },
  );
  matches(t.id, /^ten_[0-9A-Za-z]+$/, 'sub.id');
  check(t.id !== reseller.id, 'sub.id equals the reseller id');
  eq(t.parent_id, reseller.id, 'sub.parent_id');
  eq(t.status, 'active', 'sub.status');
  eq(t.allowed_origins, ['https://www.customer.example'], 'sub.allowed_origins');
  eq(t.branding.primary_color, '#0055ff', 'sub.branding.primary_color');
  eq(t.masking, { selectors: ['.card-number'], mask_all_inputs: true }, 'sub.masking');
  eq(t.permissions.remote_control, 'ask', 'sub.permissions.remote_control');
  eq(t.limits.concurrent_sessions, subLimit, 'sub.limits.concurrent_sessions');
  return t;
});

// 4. The reseller's key creates a session-only key for its customer.
const SUB_SCOPES: Scope[] = ['sessions:read', 'sessions:write', 'agent_tokens:write'];
const subKey = await step('reseller key creates a secret key for the sub-tenant', async () => {
  const k = expectOk(
    await createApiKey({
      client: resellerApi,
      headers: { 'Cobrowse-Tenant': sub.id },
      body: { type: 'secret', name: `sdk customer key ${run}`, scopes: SUB_SCOPES },
    }),
    201,
    'createApiKey (sub-tenant)',
    { rateLimited: true },
  );
  eq(k.tenant_id, sub.id, 'api_key.tenant_id');
  eq(k.prefix, 'sk_', 'api_key.prefix');
  matches(k.secret, /^sk_.{52}$/, 'api_key.secret');
  check(k.secret !== resellerKey.secret, 'the new key has the reseller key secret');
  eq([...k.scopes].sort(), [...SUB_SCOPES].sort(), 'api_key.scopes');
  return k;
});
const subApi = clientFor(subKey.secret);

// 5. The customer's backend creates a session for a visitor (with an Idempotency-Key).
const externalId = `visitor-${run}`;
const idempotencyKey = `sdk-${run}`;
const sessionBody = {
  visitor: { external_id: externalId, name: 'Ada Lovelace', email: 'ada@example.org', custom: { plan: 'gold', seats: 3, vip: true } },
  permissions: { remote_control: 'ask' as const },
  expires_in_seconds: 600,
};
const session = await step('sub-tenant key creates a session', async () => {
  const before = Date.now();
  const s = expectOk(
    await createSession({ client: subApi, headers: { 'Idempotency-Key': idempotencyKey }, body: sessionBody }),
    201,
    'createSession',
    { rateLimited: true },
  );
  matches(s.id, /^ses_[0-9A-Za-z]+$/, 'session.id');
  eq(s.object, 'session', 'session.object');
  eq(s.tenant_id, sub.id, 'session.tenant_id');
  eq(s.status, 'pending', 'session.status');
  matches(s.join_code, /^[0-9]{6}$/, 'session.join_code');
  eq(s.visitor, sessionBody.visitor, 'session.visitor');
  eq(s.permissions, { remote_control: 'ask' }, 'session.permissions');
  matches(s.visitor_token, /^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*$/, 'session.visitor_token');
  matches(s.relay_url, /^wss?:\/\//, 'session.relay_url');
  eq(s.started_at, null, 'session.started_at');
  eq(s.ended_at, null, 'session.ended_at');
  eq(s.end_reason, null, 'session.end_reason');
  const created = isTime(s.created_at, 'session.created_at');
  const expires = isTime(s.expires_at, 'session.expires_at');
  check(Math.abs(expires - created - 600_000) <= 2000, `session.expires_at ${s.expires_at} is not created_at ${s.created_at} + 600 s`);
  check(Math.abs(created - before) < 5 * 60_000, `session.created_at ${s.created_at} is not now`);
  return s;
});

await step('the same Idempotency-Key and body replay the session', async () => {
  const res = await createSession({ client: subApi, headers: { 'Idempotency-Key': idempotencyKey }, body: sessionBody });
  const s = expectOk(res, 201, 'createSession (replay)');
  eq(s.id, session.id, 'replayed session.id');
  eq(s.join_code, session.join_code, 'replayed session.join_code');
  eq(res.response.headers.get('idempotent-replayed'), 'true', 'header Idempotent-Replayed');
});

// 6. An agent gets a token to join.
await step('sub-tenant key issues an agent token', async () => {
  const before = Date.now();
  const a = expectOk(
    await createAgentToken({
      client: subApi,
      path: { id: session.id },
      body: { agent: { id: 'agent-7', name: 'Grace Hopper' }, permissions: { remote_control: 'ask' }, ttl_seconds: 300 },
    }),
    201,
    'createAgentToken',
    { rateLimited: true },
  );
  eq(a.object, 'agent_token', 'agent_token.object');
  eq(a.session_id, session.id, 'agent_token.session_id');
  eq(a.agent, { id: 'agent-7', name: 'Grace Hopper' }, 'agent_token.agent');
  eq(a.permissions, { remote_control: 'ask' }, 'agent_token.permissions');
  check(typeof a.token === 'string' && a.token.length > 0, 'agent_token.token is empty');
  matches(a.embed_url, /^https?:\/\//, 'agent_token.embed_url');
  const expires = isTime(a.expires_at, 'agent_token.expires_at');
  check(expires > before + 240_000 && expires < Date.now() + 360_000, `agent_token.expires_at ${a.expires_at} is not about now + 300 s`);
});

// 7. The session shows up in the list, filtered by the visitor's external id.
await step('sub-tenant key lists sessions', async () => {
  const l = expectOk(
    await listSessions({ client: subApi, query: { external_id: externalId, limit: 100 } }),
    200,
    'listSessions',
    { rateLimited: true },
  );
  eq(l.object, 'list', 'list.object');
  check(Array.isArray(l.data), 'list.data is not an array');
  eq(l.has_more, false, 'list.has_more');
  eq(l.data.map((s) => s.id), [session.id], 'ids of the sessions with this external_id');
  eq(l.data[0].status, 'pending', 'listed session.status');
  check(!('visitor_token' in l.data[0]), 'a listed session shows its visitor_token');
});

// 8. The agent types the code the visitor reads out.
await step('sub-tenant key gets the session by join code', async () => {
  const s = expectOk(
    await getSessionByCode({ client: subApi, path: { code: session.join_code } }),
    200,
    'getSessionByCode',
    { rateLimited: true },
  );
  eq(s.id, session.id, 'session.id');
  eq(s.join_code, session.join_code, 'session.join_code');
  eq(s.tenant_id, sub.id, 'session.tenant_id');
  check(s.status === 'pending' || s.status === 'active', `session.status: ${s.status}`);
});

// 9. The session ends.
await step('sub-tenant key ends the session', async () => {
  const s = expectOk(
    await endSession({ client: subApi, path: { id: session.id }, body: { reason: 'sdk flow done' } }),
    200,
    'endSession',
    { rateLimited: true },
  );
  eq(s.id, session.id, 'session.id');
  eq(s.status, 'ended', 'session.status');
  eq(s.end_reason, 'sdk flow done', 'session.end_reason');
  const ended = isTime(s.ended_at, 'session.ended_at');
  check(ended >= Date.parse(s.created_at), `session.ended_at ${s.ended_at} is before created_at ${s.created_at}`);
});

await step('an ended session is no longer found by code, cannot be ended twice, and reads as ended', async () => {
  expectProblem(await getSessionByCode({ client: subApi, path: { code: session.join_code } }), 404, 'not_found', 'getSessionByCode after end');
  expectProblem(await endSession({ client: subApi, path: { id: session.id } }), 409, 'session_ended', 'endSession twice');
  const s = expectOk(await getSession({ client: subApi, path: { id: session.id } }), 200, 'getSession after end');
  eq(s.status, 'ended', 'session.status');
});

// 10. Deleting the reseller cascades: the customer's key stops working.
await step('admin deletes the reseller; the sub-tenant key is then invalid', async () => {
  cleanups.length = 0;
  const d = expectOk(await deleteTenant({ client: admin, path: { id: reseller.id } }), 200, 'deleteTenant');
  eq(d.id, reseller.id, 'deleted.id');
  eq(d.object, 'tenant', 'deleted.object');
  eq(d.deleted, true, 'deleted.deleted');
  expectProblem(await getSession({ client: subApi, path: { id: session.id } }), 401, 'invalid_api_key', 'sub-tenant key after delete');
});

await finish();
