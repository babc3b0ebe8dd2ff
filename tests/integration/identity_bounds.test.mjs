// Bounds that used to reach the database or the token unchecked: a time-zone offset PostgreSQL
// cannot store (over 15:59) is a client error, not a 500; an agent id is never cut (too long is
// refused, limits in code points) and an agent name is cut only between characters.

import { test, before } from 'node:test';
import assert from 'node:assert/strict';
import { api, expectStatus, expectProblem, newReseller, newSession, decodeJwt } from './lib/client.mjs';

let R, S;
before(async () => {
  R = await newReseller();
  S = await newSession(R.secret);
});

test('a time-zone offset over 15 hours is 400/422 with a clear error, never 500', async () => {
  const q = encodeURIComponent('2026-01-31T12:00:00+16:00');
  const p = expectProblem(await api('GET', `/v1/sessions?created_after=${q}`, { token: R.secret }), 400, 'invalid_parameter', 'created_after');
  assert.match(p.detail, /15:59/);
  expectProblem(await api('POST', '/v1/api_keys', { token: R.secret, tenant: R.tenant.id,
    body: { type: 'secret', expires_at: '2099-01-31T12:00:00+16:00' } }), 422, 'invalid_field', 'expires_at');
  expectStatus(await api('GET', `/v1/sessions?created_after=${encodeURIComponent('2026-01-31T12:00:00+15:59')}`, { token: R.secret }), 200);
});

test('an agent id of multi-byte characters over the limit is refused, never cut', async () => {
  const path = `/v1/sessions/${S.id}/agent_tokens`;
  expectProblem(await api('POST', path, { token: R.secret, body: { agent: { id: '😀'.repeat(201) } } }), 422, 'invalid_field', 'agent.id');
  // Two ids that differ only past where a cut would fall stay two identities.
  const a = expectStatus(await api('POST', path, { token: R.secret, body: { agent: { id: '😀'.repeat(199) + 'a' } } }), 201);
  const b = expectStatus(await api('POST', path, { token: R.secret, body: { agent: { id: '😀'.repeat(199) + 'b' } } }), 201);
  assert.equal(decodeJwt(a.token).payload.sub, '😀'.repeat(199) + 'a');
  assert.notEqual(decodeJwt(a.token).payload.sub, decodeJwt(b.token).payload.sub);
});

test('a long multi-byte agent name is cut between characters in the token', async () => {
  const name = 'é'.repeat(150) + '😀'.repeat(50); // 200 characters, 500 bytes
  const t = expectStatus(await api('POST', `/v1/sessions/${S.id}/agent_tokens`,
    { token: R.secret, body: { agent: { id: 'agent-long-name', name } } }), 201);
  const claims = decodeJwt(t.token).payload;
  assert.ok(name.startsWith(claims.name), 'the token\'s name is a prefix of the name, whole characters only');
  assert.ok(Buffer.byteLength(claims.name) <= 207);
  const ctx = expectStatus(await api('GET', '/v1/token/session', { token: t.token }), 200);
  assert.equal(ctx.agent.name, claims.name);
});
