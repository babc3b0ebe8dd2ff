// A suspended tenant's session tokens are refused by the token routes, like its API keys: the
// visitor token and an agent token minted before the suspension get 403 tenant_suspended on
// GET /v1/token/session and POST /v1/token/session/end; reactivated, they work again.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { api, expectStatus, expectProblem, newReseller, newSubTenant, newSession } from './lib/client.mjs';

test('token routes refuse the tokens of a suspended tenant (403 tenant_suspended)', async () => {
  const r = await newReseller();
  const sub = await newSubTenant(r.secret);
  const s = await newSession(sub.secret);
  const agent = expectStatus(await api('POST', `/v1/sessions/${s.id}/agent_tokens`,
    { token: sub.secret, body: { agent: { id: 'a1' } } }), 201);
  expectStatus(await api('GET', '/v1/token/session', { token: s.visitor_token }), 200, 'before');
  expectStatus(await api('POST', `/v1/tenants/${sub.tenant.id}/suspend`, { token: r.secret }), 200);
  for (const token of [s.visitor_token, agent.token]) {
    expectProblem(await api('GET', '/v1/token/session', { token }), 403, 'tenant_suspended');
    expectProblem(await api('POST', '/v1/token/session/end', { token }), 403, 'tenant_suspended');
  }
  expectStatus(await api('POST', `/v1/tenants/${sub.tenant.id}/reactivate`, { token: r.secret }), 200);
  const got = expectStatus(await api('GET', '/v1/token/session', { token: s.visitor_token }), 200, 'after');
  assert.equal(got.status, 'ended', 'the suspension ended the session');
});

test('a suspended parent suspends its sub-tenants\' tokens too', async () => {
  const r = await newReseller();
  const sub = await newSubTenant(r.secret);
  const s = await newSession(sub.secret);
  expectStatus(await api('POST', `/v1/tenants/${r.tenant.id}/suspend`, { token: process.env.COBROWSE_ADMIN_TOKEN }), 200);
  expectProblem(await api('GET', '/v1/token/session', { token: s.visitor_token }), 403, 'tenant_suspended');
});
