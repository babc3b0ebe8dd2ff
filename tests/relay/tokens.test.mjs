// Handshake verification (docs/protocol.md "Connecting"): every way a token or request can be
// wrong gets the documented HTTP status and {code, detail}, before any upgrade.
//
// Two private servers: A, whose JWT secret this test knows (lib/server.mjs sets it), so it can
// sign tokens that are wrong for other reasons than the signature (HS512, expired, not yet
// valid, wrong audience or issuer, bad role); and B, whose tokens A must refuse (another key).

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import {
  connectVisitor, connectAgent, handshake, rejection, expectRejection, parseJwt, signJwt, sleep,
} from './lib/relay.mjs';
import { platform, eventually } from './lib/platform.mjs';
import { startServer, assertCleanExit } from './lib/server.mjs';

let A, B, PA, PB, tenantA, session, visitorToken, agentToken;
const open = new Set();
const track = (c) => { open.add(c); return c; };

before(async () => {
  [A, B] = await Promise.all([startServer({ name: 'relay-tokens-a' }), startServer({ name: 'relay-tokens-b' })]);
  PA = platform(A);
  PB = platform(B);
  tenantA = await PA.tenant();
  session = await PA.session(tenantA.id);
  visitorToken = session.visitor_token;
  agentToken = (await PA.agentToken(tenantA.id, session.id, { id: 'agent-tok', name: 'Bob' })).token;
});

after(async () => {
  for (const c of open) c.terminate();
  const res = await Promise.all([A, B].filter(Boolean).map((s) => s.stop()));
  for (const r of res) assertCleanExit(r);
});

const now = () => Math.floor(Date.now() / 1000);

/** The token re-signed by A's own secret with these header/payload changes. */
function reSigned(token, { header = {}, payload = {}, hash = 'sha256' } = {}) {
  const j = parseJwt(token);
  return signJwt({ ...j.header, ...header }, { ...j.payload, ...payload }, A.jwtSecret, hash);
}

test('the tokens the REST API mints are accepted, as ?access_token= or Authorization: Bearer', async () => {
  assert.equal(session.relay_url, A.relayUrl, 'session.relay_url is --relay-url');
  const v = track(await connectVisitor(A.relayUrl, visitorToken));
  assert.equal(v.ws.protocol, 'cobrowse.visitor.v1', 'a visitor offering cobrowse.visitor.v1 gets it');
  assert.equal(v.hello.session_id, session.id);
  // The same protocol under its general name works for a visitor too.
  const v1 = track(await connectVisitor(A.relayUrl, visitorToken, { protocols: ['cobrowse.v1'], resume: 0 }));
  assert.equal(v1.ws.protocol, 'cobrowse.v1');
  assert.equal(v1.hello.role, 'visitor');
  const a = track(await connectAgent(A.relayUrl, agentToken, { tokenVia: 'header' }));
  assert.equal(a.ws.protocol, 'cobrowse.v1', 'answered with cobrowse.v1');
  assert.equal(a.hello.session_id, session.id);
  await a.close();
  // A token this test signs with A's secret and the same claims is accepted too, so the refusals
  // below are about what was changed.
  const same = track(await connectAgent(A.relayUrl, reSigned(agentToken)));
  assert.equal(same.hello.session_id, session.id);
  await same.close();
  await v.close();
});

test('bad tokens are refused with 401 invalid_token', async () => {
  const j = parseJwt(visitorToken);
  const [h, p, sig] = j.parts;
  const other = await PB.session((await PB.tenant()).id); // B's secret
  const otherKey = randomBytes(32);
  const cases = [
    ['no token', null, {}],
    ['no token, only Authorization: Bearer with nothing', null, { headers: { Authorization: 'Bearer ' } }],
    ['garbage', 'garbage', {}],
    ['garbage in the header', 'garbage', { tokenVia: 'header' }],
    ['the token as a subprotocol (not a place the relay reads)', null, { protocols: ['cobrowse.v1', `cobrowse.token.${visitorToken.slice(0, 60)}`] }],
    ['wrong signature, in the header', signJwt(j.header, j.payload, otherKey), { tokenVia: 'header' }],
    ['two parts', `${h}.${p}`, {}],
    ['wrong signature (signed with another key)', signJwt(j.header, j.payload, otherKey), {}],
    ['a token of another server (another secret)', other.visitor_token, {}],
    ['signature of another token', `${h}.${p}.${parseJwt(agentToken).parts[2]}`, {}],
    ['alg none, no signature', signJwt({ ...j.header, alg: 'none' }, j.payload, null, null), {}],
    ['alg none, original signature', `${Buffer.from(JSON.stringify({ ...j.header, alg: 'none' })).toString('base64url')}.${p}.${sig}`, {}],
    ['header tampered to HS512, original signature', `${Buffer.from(JSON.stringify({ ...j.header, alg: 'HS512' })).toString('base64url')}.${p}.${sig}`, {}],
    ['HS512 signed with the right secret', reSigned(visitorToken, { header: { alg: 'HS512' }, hash: 'sha512' }), {}],
    ['payload changed (another session), original signature', `${h}.${Buffer.from(JSON.stringify({ ...j.payload, sid: other.id })).toString('base64url')}.${sig}`, {}],
    ['payload changed (role agent), original signature', `${h}.${Buffer.from(JSON.stringify({ ...j.payload, role: 'agent' })).toString('base64url')}.${sig}`, {}],
    ['expired an hour ago (signed with the right secret)', reSigned(visitorToken, { payload: { iat: now() - 7200, nbf: now() - 7200, exp: now() - 3600 } }), {}],
    ['not valid for another hour', reSigned(visitorToken, { payload: { nbf: now() + 3600 } }), {}],
    ['wrong audience', reSigned(visitorToken, { payload: { aud: 'cobrowse-api' } }), {}],
    ['wrong issuer', reSigned(visitorToken, { payload: { iss: 'someone-else' } }), {}],
    ['unknown role', reSigned(visitorToken, { payload: { role: 'admin' } }), {}],
    ['no exp', reSigned(visitorToken, { payload: { exp: undefined } }), {}],
  ];
  const failures = [];
  for (const [name, token, opts] of cases) {
    const r = await handshake(A.relayUrl, token, opts);
    if (r.client) {
      failures.push(`${name}: accepted (${r.client.describe(3)})`);
      r.client.terminate();
      continue;
    }
    try {
      expectRejection(r.rejected, 401, 'invalid_token', name);
    } catch (e) {
      failures.push(e.message.split('\n')[0]);
    }
  }
  assert.deepEqual(failures, [], `every bad token must be 401 invalid_token:\n${failures.join('\n')}`);
});

test('malformed requests are 400 bad_request: resume not an unsigned integer, not a WebSocket upgrade', async () => {
  for (const resume of ['abc', '-1', '1.5', '0x10', '1e3']) {
    const r = await rejection(A.relayUrl, visitorToken, { resume });
    expectRejection(r, 400, 'bad_request', `resume=${JSON.stringify(resume)}`);
  }
  const res = await fetch(A.relayUrl.replace(/^ws/, 'http'), { headers: { 'Sec-WebSocket-Protocol': `cobrowse.v1, cobrowse.token.${visitorToken}` } });
  assert.equal(res.status, 400, 'a plain GET is not an upgrade');
  const body = await res.json();
  assert.equal(body.code, 'bad_request');
  assert.equal(typeof body.detail, 'string');
});

test('a token of an ended session is refused with 404 session_ended (whether or not it ever connected)', async () => {
  const never = await PA.session(tenantA.id);
  const neverAgent = (await PA.agentToken(tenantA.id, never.id)).token;
  const used = await PA.session(tenantA.id);
  const usedAgent = (await PA.agentToken(tenantA.id, used.id)).token;
  const v = track(await connectVisitor(A.relayUrl, used.visitor_token));
  await PA.endSession(tenantA.id, never.id);
  await PA.endSession(tenantA.id, used.id);
  await v.nextClose(2000);
  // The relay learns of the end from a PostgreSQL notification: allow it a second.
  for (const [name, token, opts] of [
    ['visitor, never connected', never.visitor_token, {}],
    ['agent, never connected', neverAgent, {}],
    ['visitor, was connected', used.visitor_token, {}],
    ['visitor, was connected, with resume', used.visitor_token, { resume: 0 }],
    ['agent, was connected', usedAgent, {}],
  ]) {
    const r = await eventually(async () => {
      const x = await rejection(A.relayUrl, token, opts);
      return x.status === 404 ? x : null;
    }, 1000, `${name}: 404`);
    expectRejection(r, 404, 'session_ended', name);
  }
});

test('the agents_per_session limit: a second agent is refused with 403 agent_limit, and admitted once the first left', async () => {
  const t = await PA.tenant({ limits: { agents_per_session: 1 } });
  const s = await PA.session(t.id);
  const tok1 = (await PA.agentToken(t.id, s.id, { id: 'agent-1' })).token;
  const tok2 = (await PA.agentToken(t.id, s.id, { id: 'agent-2' })).token;
  const v = track(await connectVisitor(A.relayUrl, s.visitor_token));
  const a1 = track(await connectAgent(A.relayUrl, tok1));
  const r = await rejection(A.relayUrl, tok2);
  expectRejection(r, 403, 'agent_limit', 'second agent');
  await a1.close();
  const a2 = await eventually(async () => {
    const x = await handshake(A.relayUrl, tok2);
    return x.client ? x.client : null;
  }, 2000, 'agent-2 admitted after agent-1 left');
  track(a2);
  const hello = await a2.nextJson('hello');
  assert.equal(hello.role, 'agent');
  assert.ok(v.open);
  await sleep(10);
});

test('a token that expires while connected closes the connection with 4003', async () => {
  // Valid for about 2 more seconds: exp is 28 s ago and the relay allows 30 s of clock skew.
  const s = await PA.session(tenantA.id);
  const v = track(await connectVisitor(A.relayUrl, s.visitor_token));
  const tok = (await PA.agentToken(tenantA.id, s.id, { id: 'agent-exp' })).token;
  const t0 = now();
  const short = reSigned(tok, { payload: { exp: t0 - 28 } });
  const a = track(await connectAgent(A.relayUrl, short));
  const cl = await a.nextClose(6000);
  assert.equal(cl.code, 4003, `close code: ${cl.code} ${cl.reason}`);
  const when = cl.at / 1000 - (t0 - 28 + 30);
  assert.ok(when >= -1.5 && when <= 2.5, `closed ${when.toFixed(1)} s after exp + 30 s`);
  assert.ok(v.open, 'the visitor (whose token is valid) stays connected');
});

test('429 session_limit when the tenant\'s concurrent sessions on this node are all in use (limit from the token)', async () => {
  // The REST API would refuse to create a session over the limit, so this test signs (with A's
  // secret) a visitor token whose lim claim says 1 while one session of the tenant is live.
  const t = await PA.tenant();
  const live = await PA.session(t.id);
  track(await connectVisitor(A.relayUrl, live.visitor_token));
  const s = await PA.session(t.id);
  const lim = parseJwt(s.visitor_token).payload.lim;
  assert.equal(typeof lim, 'object', 'visitor tokens carry the tenant limits (claim lim)');
  const one = reSigned(s.visitor_token, { payload: { lim: { ...lim, concurrent_sessions: 1 } } });
  expectRejection(await rejection(A.relayUrl, one), 429, 'session_limit', 'second live session with concurrent_sessions 1');
  const two = reSigned(s.visitor_token, { payload: { lim: { ...lim, concurrent_sessions: 2 } } });
  const v = track(await connectVisitor(A.relayUrl, two));
  assert.equal(v.hello.session_id, s.id, 'admitted when the limit leaves room');
});
