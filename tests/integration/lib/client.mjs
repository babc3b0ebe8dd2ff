// Small fetch wrapper and fixtures for the integration tests.
//
// Environment:
//   COBROWSE_BASE_URL     e.g. http://127.0.0.1:18080
//   COBROWSE_ADMIN_TOKEN  a platform admin token (adm_...)
//   COBROWSE_SKIP_SPEC=1  do not check responses against openapi/openapi.yaml
//
// Every JSON response (application/json or application/problem+json) that api() receives is
// checked against the OpenAPI document with lib/spec.mjs's checkResponse(), when that file
// exists. If the file is missing the check is skipped; if it exists but fails to load, api()
// throws.

import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { fileURLToPath } from 'node:url';

export const BASE_URL = (process.env.COBROWSE_BASE_URL || 'http://127.0.0.1:18080').replace(/\/+$/, '');
export const ADMIN_TOKEN = process.env.COBROWSE_ADMIN_TOKEN || '';

export const ALL_SCOPES = Object.freeze([
  'tenants:read', 'tenants:write', 'api_keys:read', 'api_keys:write',
  'sessions:read', 'sessions:write', 'agent_tokens:write', 'webhooks:read', 'webhooks:write',
  'audit:read',
  'usage:read',
]);

// Limits given to fixture tenants so the suite (many requests per key, several files in
// parallel) never trips a rate limit by accident. Tests of the limits use their own tenants.
export const HIGH_LIMITS = Object.freeze({
  concurrent_sessions: 1000,
  sessions_per_minute: 10000,
  frames_per_second: 1000,
  bytes_per_second: 10485760,
  agents_per_session: 10,
  api_requests_per_second: 10000,
});

// ---------------------------------------------------------------------------------------------
// OpenAPI response check (lazy)

const SPEC_FILE = fileURLToPath(new URL('./spec.mjs', import.meta.url));
let specCheck; // undefined: not loaded yet; null: disabled; function otherwise

async function getSpecCheck() {
  if (specCheck !== undefined) return specCheck;
  if (process.env.COBROWSE_SKIP_SPEC === '1' || !existsSync(SPEC_FILE)) {
    specCheck = null;
    return specCheck;
  }
  const mod = await import('./spec.mjs'); // a broken spec.mjs must fail loudly
  if (typeof mod.checkResponse !== 'function') {
    throw new Error('lib/spec.mjs does not export checkResponse()');
  }
  specCheck = mod.checkResponse;
  return specCheck;
}

// ---------------------------------------------------------------------------------------------
// api()

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
export { sleep };

/**
 * api(method, path, opts) -> {status, headers, body, text, contentType}
 *
 * opts:
 *   token           bearer token (adm_/sk_/pk_...); omitted -> no Authorization header
 *   tenant          Cobrowse-Tenant header value
 *   body            a value sent as JSON (Content-Type: application/json)
 *   rawBody         a string or Buffer sent byte for byte; Content-Type is application/json
 *                   unless headers['content-type'] says otherwise (null/undefined -> none)
 *   headers         extra headers (lower- or mixed-case names); a null value removes one
 *   idempotencyKey  Idempotency-Key header
 *   retryRateLimited  retry (up to 5 times, honouring Retry-After) on 429 rate_limited;
 *                   default true, so tests that do not test rate limits are not flaky
 *   spec            false to skip the OpenAPI check for this response
 */
export async function api(method, path, opts = {}) {
  const {
    token, tenant, body, rawBody, headers: extra = {}, idempotencyKey,
    retryRateLimited = true, spec = true,
  } = opts;
  const headers = {};
  if (token !== undefined && token !== null) headers['authorization'] = `Bearer ${token}`;
  if (tenant !== undefined && tenant !== null) headers['cobrowse-tenant'] = tenant;
  if (idempotencyKey !== undefined) headers['idempotency-key'] = idempotencyKey;
  let payload;
  if (rawBody !== undefined) {
    // A Buffer body makes fetch send no Content-Type of its own.
    payload = Buffer.isBuffer(rawBody) ? rawBody : Buffer.from(rawBody, 'utf8');
    headers['content-type'] = 'application/json';
  } else if (body !== undefined) {
    payload = Buffer.from(JSON.stringify(body), 'utf8');
    headers['content-type'] = 'application/json';
  }
  for (const [k, v] of Object.entries(extra)) {
    const name = k.toLowerCase();
    if (v === null || v === undefined) delete headers[name];
    else headers[name] = String(v);
  }

  const url = path.startsWith('http') ? path : BASE_URL + path;
  for (let attempt = 0; ; attempt++) {
    const res = await fetch(url, { method, headers, body: payload, redirect: 'manual' });
    const text = await res.text();
    const contentType = res.headers.get('content-type') || '';
    let parsed = text;
    const isJson = /^application\/(problem\+)?json\b/i.test(contentType);
    if (isJson) {
      try {
        parsed = JSON.parse(text);
      } catch (e) {
        throw new Error(`${method} ${path}: ${res.status} with Content-Type ${contentType} but the body is not JSON: ${text.slice(0, 200)}`);
      }
    }
    const out = { status: res.status, headers: res.headers, body: parsed, text, contentType };
    if (retryRateLimited && res.status === 429 && parsed && parsed.code === 'rate_limited' && attempt < 5) {
      const ra = Number(res.headers.get('retry-after'));
      await sleep(Math.min(Number.isFinite(ra) && ra > 0 ? ra * 1000 : 250, 2000));
      continue;
    }
    if (isJson && spec) {
      const check = await getSpecCheck();
      if (check) {
        const pathOnly = new URL(url).pathname;
        try {
          check(method, pathOnly, res.status, parsed, contentType, res.headers);
        } catch (e) {
          e.message = `OpenAPI check failed for ${method} ${path} -> ${res.status}: ${e.message}`;
          throw e;
        }
      }
    }
    return out;
  }
}

// ---------------------------------------------------------------------------------------------
// Assertions

function show(res) {
  return `${res.status} ${typeof res.body === 'string' ? res.body.slice(0, 300) : JSON.stringify(res.body).slice(0, 600)}`;
}
export { show };

/** Asserts the status code (with the response in the message). */
export function expectStatus(res, status, what = '') {
  assert.equal(res.status, status, `${what ? what + ': ' : ''}expected ${status}, got ${show(res)}`);
  return res.body;
}

/** Asserts an RFC 9457 problem answer with the given status and code (and field if given). */
export function expectProblem(res, status, code, field, what = '') {
  const w = what ? what + ': ' : '';
  assert.equal(res.status, status, `${w}expected ${status} ${code}, got ${show(res)}`);
  assertProblemShape(res, w);
  assert.equal(res.body.code, code, `${w}expected code ${code}, got ${show(res)}`);
  if (field !== undefined) {
    if (field instanceof RegExp) assert.match(String(res.body.field), field, `${w}field: ${show(res)}`);
    else assert.equal(res.body.field, field, `${w}expected field ${field}, got ${show(res)}`);
  }
  return res.body;
}

/** The shape every error answer must have. */
export function assertProblemShape(res, w = '') {
  assert.match(res.contentType, /^application\/problem\+json\b/i, `${w}Content-Type of an error must be application/problem+json, got "${res.contentType}" (${show(res)})`);
  const b = res.body;
  assert.ok(b && typeof b === 'object' && !Array.isArray(b), `${w}problem body must be an object: ${show(res)}`);
  assert.equal(typeof b.code, 'string', `${w}problem.code: ${show(res)}`);
  assert.ok(b.code.length > 0, `${w}problem.code empty`);
  assert.equal(typeof b.title, 'string', `${w}problem.title: ${show(res)}`);
  assert.equal(b.status, res.status, `${w}problem.status must equal the HTTP status: ${show(res)}`);
  assert.equal(typeof b.request_id, 'string', `${w}problem.request_id: ${show(res)}`);
  assert.ok(b.request_id.length > 0, `${w}problem.request_id empty`);
  const hdr = res.headers.get('x-request-id');
  assert.equal(b.request_id, hdr, `${w}problem.request_id must equal the X-Request-Id header`);
}

/** Invariants of every response: X-Request-Id, no 5xx, problem+json on errors. */
export function assertInvariants(res, what = '') {
  const w = what ? what + ': ' : '';
  assert.ok(res.headers.get('x-request-id'), `${w}X-Request-Id missing (${show(res)})`);
  assert.ok(res.status < 500, `${w}server error ${show(res)}`);
  if (res.status >= 400) assertProblemShape(res, w);
}

// ---------------------------------------------------------------------------------------------
// Names and tokens

let counter = 0;
const RUN = `${process.pid.toString(36)}${Date.now().toString(36)}`;
/** A name unique across files, processes and runs. */
export function uniq(prefix = 't') {
  counter += 1;
  return `${prefix}-${RUN}-${counter}-${randomBytes(3).toString('hex')}`;
}

/** Decodes a JWT without verifying it: {header, payload, signature}. */
export function decodeJwt(token) {
  assert.equal(typeof token, 'string', 'JWT must be a string');
  const parts = token.split('.');
  assert.equal(parts.length, 3, `JWT must have 3 dot-separated parts: ${token}`);
  for (const p of parts) assert.match(p, /^[A-Za-z0-9_-]+$/, `JWT part is not base64url: ${p}`);
  const dec = (p) => JSON.parse(Buffer.from(p, 'base64url').toString('utf8'));
  return { header: dec(parts[0]), payload: dec(parts[1]), signature: parts[2] };
}

/**
 * An id of the same form as `id` that names nothing: the last character is changed to another
 * character of the same kind (digit/lowercase/uppercase), so the id stays well-formed.
 */
export function mutateId(id) {
  const last = id[id.length - 1];
  let repl;
  if (/[0-9]/.test(last)) repl = String((Number(last) + 1) % 10);
  else if (/[a-z]/.test(last)) repl = last === 'a' ? 'b' : 'a';
  else if (/[A-Z]/.test(last)) repl = last === 'A' ? 'B' : 'A';
  else repl = 'a';
  return id.slice(0, -1) + repl;
}

/** An ISO 8601 / RFC 3339 UTC timestamp `ms` milliseconds from now, whole seconds. */
export function isoIn(ms) {
  return new Date(Math.floor((Date.now() + ms) / 1000) * 1000).toISOString().replace('.000Z', 'Z');
}

// ---------------------------------------------------------------------------------------------
// Fixtures

function requireAdmin() {
  assert.ok(ADMIN_TOKEN, 'COBROWSE_ADMIN_TOKEN must be set');
  return ADMIN_TOKEN;
}

/**
 * newKey(token, tenantHeader, {type, scopes, expires_at, name}) -> the created key object,
 * including `secret`. tenantHeader may be null (the key's own tenant).
 */
export async function newKey(token, tenantHeader, opts = {}) {
  const { type = 'secret', scopes, expires_at, name = uniq('key') } = opts;
  const body = { type, name };
  if (scopes !== undefined) body.scopes = scopes;
  else if (type === 'secret') body.scopes = [...ALL_SCOPES];
  if (expires_at !== undefined) body.expires_at = expires_at;
  const res = await api('POST', '/v1/api_keys', { token, tenant: tenantHeader, body });
  const key = expectStatus(res, 201, `create ${type} key`);
  assert.equal(typeof key.secret, 'string', `a created key must include its secret: ${show(res)}`);
  assert.ok(key.secret.startsWith(type === 'publishable' ? 'pk_' : 'sk_'), `key secret prefix: ${key.secret}`);
  return key;
}

/**
 * newReseller(settings) -> {tenant, key, secret}: the admin creates a reseller (with
 * HIGH_LIMITS unless settings.limits is given) and a full-scope secret key for it.
 */
export async function newReseller(settings = {}) {
  const admin = requireAdmin();
  const body = { name: uniq('reseller'), limits: { ...HIGH_LIMITS }, ...settings };
  const res = await api('POST', '/v1/tenants', { token: admin, body });
  const tenant = expectStatus(res, 201, 'admin creates reseller');
  assert.match(tenant.id, /^ten_/, 'tenant id prefix');
  const key = await newKey(admin, tenant.id, { type: 'secret', scopes: [...ALL_SCOPES] });
  return { tenant, key, secret: key.secret };
}

/**
 * newSubTenant(resellerSecret, settings, {withKey=true}) -> {tenant, key, secret}: the
 * reseller creates a sub-tenant (limits default to HIGH_LIMITS, which must not exceed the
 * parent's) and a full-scope secret key for it via Cobrowse-Tenant.
 */
export async function newSubTenant(resellerSecret, settings = {}, { withKey = true } = {}) {
  const body = { name: uniq('sub'), limits: { ...HIGH_LIMITS }, ...settings };
  const res = await api('POST', '/v1/tenants', { token: resellerSecret, body });
  const tenant = expectStatus(res, 201, 'reseller creates sub-tenant');
  assert.match(tenant.id, /^ten_/, 'tenant id prefix');
  if (!withKey) return { tenant };
  const key = await newKey(resellerSecret, tenant.id, { type: 'secret', scopes: [...ALL_SCOPES] });
  return { tenant, key, secret: key.secret };
}

/** newSession(secret, body, tenantHeader) -> the created session (201 asserted). */
export async function newSession(secret, body = {}, tenantHeader) {
  const res = await api('POST', '/v1/sessions', { token: secret, tenant: tenantHeader, body });
  return expectStatus(res, 201, 'create session');
}
