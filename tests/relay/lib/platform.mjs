// REST fixtures for the relay tests, on any server (the default one of scripts/test.sh or one
// started with lib/server.mjs). Built on tests/integration/lib/client.mjs's api(): every
// answer is also checked against openapi/openapi.yaml. The platform admin token acts on each
// tenant through Cobrowse-Tenant, so no API keys are needed.

import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { api, expectStatus, uniq } from '../../integration/lib/client.mjs';
import { startServer } from './server.mjs';

export { uniq };

// Limits that never get in the way of a relay test (the frame and byte rates at the API's
// maxima). Tests of a limit set their own.
export const RELAY_LIMITS = Object.freeze({
  concurrent_sessions: 5000,
  sessions_per_minute: 100000,
  frames_per_second: 1000000,
  bytes_per_second: 1073741824,
  agents_per_session: 10,
  api_requests_per_second: 100000,
});

/**
 * platform({baseUrl, adminToken}) -> fixture functions on that server.
 */
export function platform({ baseUrl, adminToken }) {
  const url = (p) => baseUrl.replace(/\/+$/, '') + p;
  const call = (method, p, opts = {}) => api(method, url(p), { token: adminToken, ...opts });
  return {
    baseUrl,
    call,
    /** A top-level tenant with RELAY_LIMITS (overridden field by field by limits). */
    async tenant({ limits = {}, permissions = { remote_control: 'ask' }, ...rest } = {}) {
      const res = await call('POST', '/v1/tenants', {
        body: { name: uniq('relay'), limits: { ...RELAY_LIMITS, ...limits }, permissions, ...rest },
      });
      return expectStatus(res, 201, 'create tenant');
    },
    /** A session of the tenant (body as POST /v1/sessions), with its visitor_token. */
    async session(tenantId, body = {}) {
      const res = await call('POST', '/v1/sessions', { tenant: tenantId, body: { visitor: { external_id: uniq('v'), name: 'Ann' }, ...body } });
      const s = expectStatus(res, 201, 'create session');
      assert.equal(typeof s.visitor_token, 'string', 'session.visitor_token');
      return s;
    },
    /** An agent token: {token, ...} (agent defaults to a unique id, name "Bob"). */
    async agentToken(tenantId, sessionId, { id = uniq('agent'), name = 'Bob', permissions, ttl_seconds } = {}) {
      const body = { agent: { id, name } };
      if (permissions) body.permissions = permissions;
      if (ttl_seconds) body.ttl_seconds = ttl_seconds;
      const res = await call('POST', `/v1/sessions/${sessionId}/agent_tokens`, { tenant: tenantId, body });
      const t = expectStatus(res, 201, 'create agent token');
      return t;
    },
    async getSession(tenantId, id) {
      return expectStatus(await call('GET', `/v1/sessions/${id}`, { tenant: tenantId }), 200, 'get session');
    },
    async endSession(tenantId, id) {
      return expectStatus(await call('POST', `/v1/sessions/${id}/end`, { tenant: tenantId }), 200, 'end session');
    },
    async suspendTenant(id) {
      return expectStatus(await call('POST', `/v1/tenants/${id}/suspend`), 200, 'suspend tenant');
    },
    async patchTenant(id, body) {
      return expectStatus(await call('PATCH', `/v1/tenants/${id}`, { body }), 200, 'patch tenant');
    },
  };
}

/**
 * The server of scripts/test.sh when COBROWSE_BASE_URL, COBROWSE_ADMIN_TOKEN and
 * COBROWSE_RELAY_URL are all set; otherwise a private one. -> {baseUrl, relayUrl, adminToken,
 * stop(), own}
 */
export async function defaultServer() {
  const { COBROWSE_BASE_URL: baseUrl, COBROWSE_ADMIN_TOKEN: adminToken, COBROWSE_RELAY_URL: relayUrl } = process.env;
  if (baseUrl && adminToken && relayUrl) {
    return { baseUrl, adminToken, relayUrl, own: false, stop: async () => null };
  }
  const srv = await startServer({ name: 'relay-default' });
  return { ...srv, own: true };
}

/** Runs one SQL statement on $DATABASE_URL with psql; returns rows as arrays of strings. */
export function sql(query) {
  return new Promise((resolve, reject) => {
    execFile('psql', [process.env.DATABASE_URL, '-XAtq', '-v', 'ON_ERROR_STOP=1', '-F', '\t', '-c', query],
      { timeout: 20_000 }, (err, stdout, stderr) => {
        if (err) { err.message += `\n${stderr}`; reject(err); return; }
        resolve(stdout.split('\n').filter((l) => l.length > 0).map((l) => l.split('\t')));
      });
  });
}

/** Quotes an id for SQL after checking it is one (ids are [A-Za-z0-9_-]). */
export function lit(id) {
  assert.match(String(id), /^[A-Za-z0-9_-]+$/, `not an id: ${id}`);
  return `'${id}'`;
}

/** Polls fn() until it returns a truthy value (returned), or throws after timeoutMs. */
export async function eventually(fn, timeoutMs = 3000, what = 'condition', stepMs = 50) {
  const end = Date.now() + timeoutMs;
  let last;
  for (;;) {
    try {
      last = await fn();
      if (last) return last;
    } catch (e) { last = e; }
    if (Date.now() > end) {
      throw new Error(`${what} not reached within ${timeoutMs} ms (last: ${last instanceof Error ? last.message : JSON.stringify(last)})`);
    }
    await new Promise((r) => setTimeout(r, stepMs));
  }
}
