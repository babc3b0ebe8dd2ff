// Routes authenticated by a session token (GET /v1/token/session, POST /v1/token/session/end):
// what the visitor SDK and the agent viewer call from the browser with the visitor token or an
// agent token. Bad tokens of every kind are 401 invalid_token, answers are readable from any
// origin, ending closes the relay's connections, and a token sees only its own session.
//
// Cases that need a token signed with the server's own secret (expired, HS512 with the same key,
// a changed claim re-signed) read it from COBROWSE_JWT_SECRET or $COBROWSE_DATA_DIR/jwt.secret
// (scripts/test.sh sets the data dir); they are skipped, saying so, when neither is available.

import { test, before } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import {
  api, expectStatus, expectProblem, newReseller, newSubTenant, newSession, show, sleep,
} from './lib/client.mjs';
import { connectVisitor, connectAgent, signJwt, parseJwt } from '../relay/lib/relay.mjs';

const tag = randomBytes(4).toString('hex');
const ORIGINS = [`https://shop-${tag}.example`, 'http://localhost:3000'];
const BRANDING = {
  product_name: `Shop Help ${tag}`,
  logo_url: 'https://cdn.shop.example/logo.svg',
  primary_color: '#0055ff',
  accent_color: '#ff7700',
  consent_text: 'May we see your screen?',
};
const MASKING = { selectors: ['.card-number', '#ssn'], mask_all_inputs: true };

function serverSecret() {
  const env = process.env.COBROWSE_JWT_SECRET;
  if (env && /^[0-9a-f]{64}$/i.test(env)) return Buffer.from(env, 'hex');
  const dir = process.env.COBROWSE_DATA_DIR;
  const file = dir && join(dir, 'jwt.secret');
  if (file && existsSync(file)) {
    const hex = readFileSync(file, 'utf8').trim();
    if (/^[0-9a-f]{64}$/i.test(hex)) return Buffer.from(hex, 'hex');
  }
  return null;
}
const SECRET = serverSecret();
const needSecret = SECRET ? false : 'the server\'s JWT secret is not readable (set COBROWSE_DATA_DIR or COBROWSE_JWT_SECRET)';

const F = {};

before(async () => {
  F.R = await newReseller();
  F.S = await newSubTenant(F.R.secret, {
    allowed_origins: ORIGINS, branding: BRANDING, masking: MASKING, permissions: { remote_control: 'ask' },
  });
  F.other = await newSubTenant(F.R.secret, { allowed_origins: ORIGINS });
  F.session = await newSession(F.S.secret, { visitor: { external_id: `v-${tag}`, name: 'Ann' } });
  F.agent = expectStatus(await api('POST', `/v1/sessions/${F.session.id}/agent_tokens`, {
    token: F.S.secret, body: { agent: { id: 'agent-7', name: 'Bob' }, permissions: { remote_control: 'ask' } },
  }), 201, 'agent token');
  F.agentOff = expectStatus(await api('POST', `/v1/sessions/${F.session.id}/agent_tokens`, {
    token: F.S.secret, body: { agent: { id: 'agent-8' }, permissions: { remote_control: 'off' } },
  }), 201, 'agent token without control');
  F.otherSession = await newSession(F.other.secret, {});
});

const get = (token, opts = {}) => api('GET', '/v1/token/session', { token, ...opts });
const end = (token, opts = {}) => api('POST', '/v1/token/session/end', { token, ...opts });

function expectAnyOrigin(res, what) {
  assert.equal(res.headers.get('access-control-allow-origin'), '*', `${what}: Access-Control-Allow-Origin: * (${show(res)})`);
  assert.equal(res.headers.get('access-control-allow-credentials'), null, `${what}: never with credentials`);
}

// ---------------------------------------------------------------------------------------------
// What the holders see

test('the session-creation answer carries the tenant\'s branding and masking', async () => {
  assert.deepEqual(F.session.branding, BRANDING);
  assert.deepEqual(F.session.masking, MASKING);
  const plain = expectStatus(await api('GET', `/v1/sessions/${F.session.id}`, { token: F.S.secret }), 200);
  assert.equal(plain.branding, undefined, 'only the creation answer carries them');
});

test('embed_url is <public url>/viewer/<tenant_id>#token=<the agent token>', () => {
  const u = new URL(F.agent.embed_url);
  assert.equal(u.pathname, `/viewer/${F.S.tenant.id}`);
  assert.equal(u.search, '', 'no query string: the token must not reach a server');
  assert.equal(u.hash, `#token=${F.agent.token}`);
});

test('visitor token: GET /v1/token/session answers the session context', async () => {
  const res = await get(F.session.visitor_token, { headers: { origin: ORIGINS[0] } });
  const b = expectStatus(res, 200);
  expectAnyOrigin(res, 'GET');
  assert.equal(b.object, 'session_context');
  assert.equal(b.session_id, F.session.id);
  assert.equal(b.tenant_id, F.S.tenant.id);
  assert.equal(b.role, 'visitor');
  assert.equal(b.status, 'pending');
  assert.equal(b.join_code, F.session.join_code);
  assert.equal(b.relay_url, F.session.relay_url);
  assert.deepEqual(b.permissions, { remote_control: 'ask' });
  assert.equal(b.agent, null);
  assert.deepEqual(b.branding, BRANDING);
  assert.deepEqual(b.masking, MASKING);
  assert.deepEqual(b.allowed_origins, ORIGINS);
  assert.equal(b.ended_at, null);
  assert.equal(Date.parse(b.expires_at), Date.parse(F.session.expires_at));
  assert.equal(Date.parse(b.token_expires_at) / 1000, parseJwt(F.session.visitor_token).payload.exp);
  assert.match(res.headers.get('ratelimit-limit') || '', /^\d+$/, 'RateLimit-Limit');
});

test('agent token: role agent, the agent and the token\'s own permissions', async () => {
  const b = expectStatus(await get(F.agent.token), 200);
  assert.equal(b.role, 'agent');
  assert.deepEqual(b.agent, { id: 'agent-7', name: 'Bob' });
  assert.deepEqual(b.permissions, { remote_control: 'ask' });
  assert.equal(b.session_id, F.session.id);
  const off = expectStatus(await get(F.agentOff.token), 200);
  assert.deepEqual(off.agent, { id: 'agent-8', name: null });
  assert.deepEqual(off.permissions, { remote_control: 'off' }, 'narrower than the session\'s');
});

test('a token sees only its own session', async () => {
  const mine = expectStatus(await get(F.otherSession.visitor_token), 200);
  assert.equal(mine.session_id, F.otherSession.id);
  assert.equal(mine.tenant_id, F.other.tenant.id);
  const res = await get(F.otherSession.visitor_token);
  for (const leak of [F.session.id, F.session.join_code, BRANDING.product_name]) {
    assert.ok(!res.text.includes(leak), `another session's token leaks ${leak}`);
  }
});

test('CORS preflights answer 204 for any origin', async () => {
  for (const path of ['/v1/token/session', '/v1/token/session/end']) {
    const res = await api('OPTIONS', path, {
      headers: { origin: 'https://anywhere.example', 'access-control-request-method': path.endsWith('end') ? 'POST' : 'GET', 'access-control-request-headers': 'authorization' },
    });
    assert.equal(res.status, 204, `${path}: ${show(res)}`);
    assert.equal(res.headers.get('access-control-allow-origin'), '*');
    assert.match(res.headers.get('access-control-allow-methods') || '', /GET/);
    assert.match(res.headers.get('access-control-allow-methods') || '', /POST/);
    assert.match(res.headers.get('access-control-allow-headers') || '', /authorization/i);
    assert.ok(res.headers.get('x-request-id'));
  }
});

// ---------------------------------------------------------------------------------------------
// Bad credentials: 401 invalid_token on both routes, readable cross-origin

const tamper = (token, change) => {
  const { parts, payload } = parseJwt(token);
  const p = Buffer.from(JSON.stringify({ ...payload, ...change })).toString('base64url');
  return `${parts[0]}.${p}.${parts[2]}`;
};
const BAD = [
  ['no Authorization header', () => null],
  ['Bearer garbage', () => 'garbage'],
  ['a secret API key', () => F.S.secret],
  ['the reseller\'s key', () => F.R.secret],
  ['a JWT signed with another key', () => signJwt({ alg: 'HS256', typ: 'JWT' }, parseJwt(F.session.visitor_token).payload, randomBytes(32))],
  ['alg none', () => signJwt({ alg: 'none', typ: 'JWT' }, parseJwt(F.session.visitor_token).payload, null, null)],
  ['a claim changed (sid of another session)', () => tamper(F.session.visitor_token, { sid: F.otherSession.id })],
  ['a claim changed (role agent)', () => tamper(F.session.visitor_token, { role: 'agent' })],
  ['the signature cut off', () => F.session.visitor_token.split('.').slice(0, 2).join('.') + '.'],
  ['a 5 KiB token', () => 'a'.repeat(5000)],
];
for (const [what, tok] of BAD) {
  for (const [m, fn] of [['GET', get], ['POST end', end]]) {
    test(`${what} -> ${m} -> 401 invalid_token`, async () => {
      const t = tok();
      const res = t === null ? await api(m === 'GET' ? 'GET' : 'POST', m === 'GET' ? '/v1/token/session' : '/v1/token/session/end') : await fn(t);
      expectProblem(res, 401, 'invalid_token');
      expectAnyOrigin(res, what);
      assert.ok(!res.text.includes(F.session.join_code), 'no session data in the answer');
    });
  }
}

test('signed with the server\'s key: expired, not yet valid, HS512, and re-signed changes are 401', { skip: needSecret }, async () => {
  const { payload } = parseJwt(F.session.visitor_token);
  const now = Math.floor(Date.now() / 1000);
  const cases = [
    ['expired', signJwt({ alg: 'HS256', typ: 'JWT' }, { ...payload, iat: now - 7200, nbf: now - 7200, exp: now - 3600 }, SECRET), /expired/],
    ['not yet valid', signJwt({ alg: 'HS256', typ: 'JWT' }, { ...payload, nbf: now + 3600, exp: now + 7200 }, SECRET), /not valid yet/],
    ['HS512 with the same key', signJwt({ alg: 'HS512', typ: 'JWT' }, payload, SECRET, 'sha512'), /algorithm/],
    ['another audience', signJwt({ alg: 'HS256', typ: 'JWT' }, { ...payload, aud: 'someone-else' }, SECRET), /audience/],
  ];
  // Control: the same crafting with the real claims is accepted, so the refusals mean something.
  expectStatus(await get(signJwt({ alg: 'HS256', typ: 'JWT' }, payload, SECRET)), 200, 'control');
  for (const [what, token, detail] of cases) {
    const res = await get(token);
    expectProblem(res, 401, 'invalid_token', undefined, what);
    assert.match(res.body.detail, detail, `${what}: detail says why`);
    expectProblem(await end(token), 401, 'invalid_token', undefined, `${what} (end)`);
  }
  expectStatus(await get(F.session.visitor_token), 200, 'and the session was not ended by any of them');
});

// ---------------------------------------------------------------------------------------------
// Rate limit per token

test('one token is limited to about 10 requests per second (429 rate_limited with Retry-After)', async () => {
  const s = await newSession(F.S.secret, {});
  const results = await Promise.all(Array.from({ length: 30 }, () => get(s.visitor_token, { retryRateLimited: false })));
  const ok = results.filter((r) => r.status === 200).length;
  const limited = results.filter((r) => r.status === 429);
  assert.equal(ok + limited.length, 30, `only 200 and 429: ${results.map((r) => r.status)}`);
  assert.ok(ok >= 1 && ok <= 15, `about 10 pass, got ${ok}`);
  assert.ok(limited.length >= 1, 'some are limited');
  for (const r of limited) {
    expectProblem(r, 429, 'rate_limited');
    assert.match(r.headers.get('retry-after') || '', /^\d+$/);
    expectAnyOrigin(r, '429');
  }
  // Another token of the same session has its own budget.
  const a = expectStatus(await api('POST', `/v1/sessions/${s.id}/agent_tokens`, { token: F.S.secret, body: { agent: { id: 'x' } } }), 201);
  expectStatus(await get(a.token, { retryRateLimited: false }), 200, 'another token');
});

// ---------------------------------------------------------------------------------------------
// Ending

test('the visitor ends the session: 200 ended_by_visitor, the relay closes with 4001, then 409', async () => {
  const s = await newSession(F.S.secret, {});
  const a = expectStatus(await api('POST', `/v1/sessions/${s.id}/agent_tokens`, { token: F.S.secret, body: { agent: { id: 'a' } } }), 201);
  const v = await connectVisitor(s.relay_url, s.visitor_token);
  const ag = await connectAgent(s.relay_url, a.token);
  const res = await end(s.visitor_token, { headers: { origin: ORIGINS[0] } });
  const b = expectStatus(res, 200);
  expectAnyOrigin(res, 'end');
  assert.equal(b.object, 'session_context');
  assert.equal(b.status, 'ended');
  assert.equal(b.end_reason, 'ended_by_visitor');
  assert.ok(b.ended_at, 'ended_at');
  for (const [who, c] of [['visitor', v], ['agent', ag]]) {
    const close = await c.nextClose(5000);
    assert.equal(close.code, 4001, `${who}'s connection closed with 4001: ${close.code} ${close.reason}`);
  }
  const again = await end(s.visitor_token);
  expectProblem(again, 409, 'session_ended');
  expectAnyOrigin(again, '409');
  expectProblem(await end(a.token), 409, 'session_ended', undefined, 'the agent too');
  const after = expectStatus(await get(s.visitor_token), 200, 'an ended session still answers');
  assert.equal(after.status, 'ended');
  assert.equal(after.end_reason, 'ended_by_visitor');
  const viaKey = expectStatus(await api('GET', `/v1/sessions/${s.id}`, { token: F.S.secret }), 200);
  assert.equal(viaKey.status, 'ended');
  assert.equal(viaKey.end_reason, 'ended_by_visitor');
});

test('an agent ends the session: end_reason ended_by_agent; the visitor then sees it ended', async () => {
  const s = await newSession(F.S.secret, {});
  const a = expectStatus(await api('POST', `/v1/sessions/${s.id}/agent_tokens`, { token: F.S.secret, body: { agent: { id: 'a', name: 'A' } } }), 201);
  const b = expectStatus(await end(a.token, { body: { reason: 'ignored' } }), 200);
  assert.equal(b.role, 'agent');
  assert.equal(b.end_reason, 'ended_by_agent');
  const v = expectStatus(await get(s.visitor_token), 200);
  assert.equal(v.status, 'ended');
  assert.equal(v.end_reason, 'ended_by_agent');
});

test('a session ended through the API is 409 for its tokens; other sessions are untouched', async () => {
  const s = await newSession(F.S.secret, {});
  expectStatus(await api('POST', `/v1/sessions/${s.id}/end`, { token: F.S.secret }), 200);
  expectProblem(await end(s.visitor_token), 409, 'session_ended');
  expectStatus(await get(F.otherSession.visitor_token), 200);
  assert.equal((await get(F.otherSession.visitor_token)).body.status, 'pending', 'another tenant\'s session still pending');
});

test('once the tenant is deleted, its sessions\' tokens get 404 not_found', async () => {
  const t = await newSubTenant(F.R.secret, {});
  const s = await newSession(t.secret, {});
  expectStatus(await get(s.visitor_token), 200, 'before');
  expectStatus(await api('DELETE', `/v1/tenants/${t.tenant.id}`, { token: F.R.secret }), 200, 'delete the tenant');
  await sleep(50);
  expectProblem(await get(s.visitor_token), 404, 'not_found');
  expectProblem(await end(s.visitor_token), 404, 'not_found');
});
