// One definition per fact: the tenant limits (api/limits.h) and the scopes (api/scopes.h) are
// what openapi/openapi.yaml says they are. The spec is read here and the server is tried against
// it: every limit's bounds and default, the set of limits a tenant has, every scope name.

import { test, before } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { parse } from 'yaml';
import { api, expectStatus, expectProblem, ADMIN_TOKEN, uniq, newReseller } from './lib/client.mjs';

const spec = parse(readFileSync(new URL('../../openapi/openapi.yaml', import.meta.url), 'utf8'));
const LIMITS = spec.components.schemas.LimitsInput.properties;
const SCOPES = spec.components.schemas.Scope.enum;

test('a reseller created without limits gets the spec\'s defaults, and exactly the spec\'s limits', async () => {
  const t = expectStatus(await api('POST', '/v1/tenants', { token: ADMIN_TOKEN, body: { name: uniq('defaults') } }), 201);
  const want = Object.fromEntries(Object.entries(LIMITS).map(([k, s]) => [k, s.default]));
  for (const [k, v] of Object.entries(want)) assert.equal(typeof v, 'number', `LimitsInput.${k} has a default in the spec`);
  assert.deepEqual(t.limits, want);
  assert.deepEqual(Object.keys(spec.components.schemas.Limits.properties).sort(), Object.keys(LIMITS).sort(),
    'Limits and LimitsInput name the same limits');
});

test('every limit accepts its spec minimum and maximum and refuses one beyond either', async () => {
  const t = expectStatus(await api('POST', '/v1/tenants', { token: ADMIN_TOKEN, body: { name: uniq('bounds') } }), 201);
  for (const [k, s] of Object.entries(LIMITS)) {
    for (const v of [s.minimum, s.maximum]) {
      const got = expectStatus(await api('PATCH', `/v1/tenants/${t.id}`, { token: ADMIN_TOKEN, body: { limits: { [k]: v } } }), 200, `${k} = ${v}`);
      assert.equal(got.limits[k], v);
    }
    for (const v of [s.minimum - 1, s.maximum + 1]) {
      expectProblem(await api('PATCH', `/v1/tenants/${t.id}`, { token: ADMIN_TOKEN, body: { limits: { [k]: v } } }),
        422, 'invalid_field', `limits.${k}`, `${k} = ${v}`);
    }
  }
});

test('a sub-tenant\'s effective limits are capped by its parent\'s, limit by limit', async () => {
  const low = Object.fromEntries(Object.entries(LIMITS).map(([k, s]) => [k, s.minimum + 1]));
  const r = await newReseller();
  const sub = expectStatus(await api('POST', '/v1/tenants', { token: r.secret, body: { name: uniq('sub'), limits: low } }), 201);
  // The parent lowers its own limits below the child's: the child's tokens carry the minimum.
  const lower = Object.fromEntries(Object.entries(LIMITS).map(([k, s]) => [k, s.minimum]));
  expectStatus(await api('PATCH', `/v1/tenants/${r.tenant.id}`, { token: ADMIN_TOKEN, body: { limits: lower } }), 200);
  const key = expectStatus(await api('POST', '/v1/api_keys', { token: r.secret, tenant: sub.id, body: { type: 'secret' } }), 201);
  const s = expectStatus(await api('POST', '/v1/sessions', { token: key.secret, body: {} }), 201);
  const claims = JSON.parse(Buffer.from(s.visitor_token.split('.')[1], 'base64url').toString('utf8'));
  for (const [k, v] of Object.entries(claims.lim)) assert.equal(v, lower[k], `lim.${k} is the parent's`);
});

test('every scope of the spec can be given to a key, and nothing else', async () => {
  const r = await newReseller();
  for (const scope of SCOPES) {
    const k = expectStatus(await api('POST', '/v1/api_keys', { token: r.secret, tenant: r.tenant.id, body: { type: 'secret', scopes: [scope] } }), 201, scope);
    assert.deepEqual(k.scopes, [scope]);
  }
  expectProblem(await api('POST', '/v1/api_keys', { token: r.secret, tenant: r.tenant.id, body: { type: 'secret', scopes: ['sessions:delete'] } }),
    422, 'invalid_field', 'scopes.0');
});
