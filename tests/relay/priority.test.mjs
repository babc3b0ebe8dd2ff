// The priority lane (docs/protocol.md "Connecting": resume): after a node loses every
// connection at once, 1,000 clients reconnect with resume at once; they are all admitted and
// nothing is lost, while new sessions arriving during the burst are turned away with 429: the
// ongoing sessions get back first. How fast they get back is a figure of scripts/bench-priority.sh
// (under ASan on a shared machine a time limit here would test the machine, not the relay).
//
// Limits are copied into each token when it is minted (claim "lim"), so tenants get their
// limits before any session is created; PATCHing a tenant later would not change the tokens
// already out. Hence two tenants:
// - tenant A holds the 500 ongoing sessions. Its sessions_per_minute is 6000 (100 new sessions
//   a second): creating them through REST fits its burst, and first connecting them to the relay
//   takes ~5 s (clients retry on 429 after Retry-After, as they must). 500 visitors resuming at
//   once is 5 times A's new-session budget: the lane must not count them against it.
// - tenant B has sessions_per_minute 600 (10 a second). Its budget is used up just before the
//   burst; its new sessions arriving during the burst must be turned away with 429 rate_limited
//   and Retry-After (at most what 10 a second lets through over the burst), and get in when they
//   retry after it.
// The node's handshake budget is --relay-handshakes-per-second 200: the 1,000 resumes are 5
// times that, and must all be admitted anyway.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import {
  connectVisitor, connectAgent, handshake, VisitorPage, agentView, assertFramesEqual,
  payloadFor, connectWithRetry, expectRejection, HandshakeRejected, sleep,
} from './lib/relay.mjs';
import { platform } from './lib/platform.mjs';
import { pool } from './lib/pool.mjs';
import { startServer, assertCleanExit } from './lib/server.mjs';

const N = 500;
const NEW = 20;
const HANDSHAKES_PER_SECOND = 200;
const B_PER_SECOND = 10;
let S, P, A, B;
const open = new Set();
const track = (c) => { open.add(c); return c; };

before(async () => {
  S = await startServer({
    name: 'relay-priority',
    flags: { 'relay-handshakes-per-second': HANDSHAKES_PER_SECOND },
  });
  P = platform(S);
  A = await P.tenant({ limits: { sessions_per_minute: 6000 } });
  B = await P.tenant({ limits: { sessions_per_minute: B_PER_SECOND * 60 } });
});

after(async () => {
  for (const c of open) c.terminate();
  if (S) assertCleanExit(await S.stop());
});

test('priority lane: 1,000 sockets dropped at once all resume with nothing lost while new sessions during the burst get 429', async (t) => {
  // 500 sessions of A, each with a visitor and one agent; B's sessions for later.
  const setup0 = Date.now();
  const sessions = await pool(Array.from({ length: N }, (_, k) => k), 16, async () => {
    const s = await P.session(A.id);
    const tok = await P.agentToken(A.id, s.id);
    return { s, agentToken: tok.token };
  });
  const fresh = await pool(Array.from({ length: NEW }, (_, k) => k), 8, () => P.session(B.id));
  const fillers = await pool(Array.from({ length: B_PER_SECOND + 5 }, (_, k) => k), 8, () => P.session(B.id));
  t.diagnostic(`created ${N + NEW + fillers.length} sessions in ${Date.now() - setup0} ms`);

  const conn0 = Date.now();
  await pool(sessions, 100, async (x) => {
    x.v = track(await connectWithRetry(() => connectVisitor(S.relayUrl, x.s.visitor_token), { deadlineMs: 40_000 }));
    x.page = new VisitorPage();
    x.page.attach(x.v);
    x.page.snapshot(payloadFor(1, 600, 'snap'));
    for (let k = 0; k < 4; k++) x.page.event(payloadFor(x.page.nextSeq, 120));
    x.a = track(await connectWithRetry(() => connectAgent(S.relayUrl, x.agentToken), { deadlineMs: 40_000 }));
  });
  await Promise.all(sessions.map((x) => Promise.all([x.page.acked(5, 20_000), x.a.waitForSeq(5, 20_000)])));
  t.diagnostic(`1,000 first connections in ${Date.now() - conn0} ms`);

  // B uses up its new-session budget (10 a second, burst 10) just before the burst (after a
  // pause that lets the node budget refill, so that it is B's budget that refuses).
  await sleep(1100);
  let bAdmitted = 0;
  for (const f of fillers) {
    const r = await handshake(S.relayUrl, f.visitor_token);
    if (r.rejected) break;
    track(r.client);
    bAdmitted++;
  }
  assert.ok(bAdmitted >= 1 && bAdmitted < fillers.length, `B's budget: ${bAdmitted} of ${fillers.length} admitted back to back`);

  // Three more events each, not waited for, and every socket drops at once.
  for (const x of sessions) for (let k = 0; k < 3; k++) x.page.event(payloadFor(x.page.nextSeq, 120));
  for (const x of sessions) {
    x.v.terminate();
    x.a.terminate();
  }
  await Promise.all(sessions.flatMap((x) => [x.v.closed, x.a.closed]));
  for (const x of sessions) {
    x.agentItems1 = x.a.items.slice();
    x.agentLast = x.a.lastSeq;
    x.page.detach();
  }

  // All reconnect with resume at once; B's new sessions arrive once the node budget is spent
  // (after the first 2 x 150 handshakes), spread over the rest of the burst.
  const t0 = Date.now();
  const attempts = [];
  const newAttempts = [];
  sessions.forEach((x, k) => {
    attempts.push(handshake(S.relayUrl, x.s.visitor_token, { resume: x.page.lastSeq }).then((r) => ({ x, role: 'visitor', r })));
    attempts.push(handshake(S.relayUrl, x.agentToken, { resume: x.agentLast }).then((r) => ({ x, role: 'agent', r })));
    if (k >= 150 && k % 25 === 0 && newAttempts.length < NEW) {
      for (let j = 0; j < 2 && newAttempts.length < NEW; j++) {
        const f = fresh[newAttempts.length];
        newAttempts.push(handshake(S.relayUrl, f.visitor_token).then((r) => ({ f, r, at: Date.now() })));
      }
    }
  });
  const results = await Promise.all(attempts);
  for (const o of results) if (o.r.client) track(o.r.client);
  const refused = results.filter((o) => o.r.rejected);
  assert.deepEqual(refused.slice(0, 5).map((o) => `${o.role}: ${o.r.rejected.status} ${o.r.rejected.text}`), [],
    `every resume handshake is admitted (${refused.length} of ${results.length} refused)`);
  const hellos = await Promise.all(results.map(async (o) => {
    o.r.client.hello = await o.r.client.nextJson('hello', 10_000);
    return Date.now();
  }));
  t.diagnostic(`1,000 resumes: every hello ${Math.max(...hellos) - t0} ms after the burst began`);

  const newResults = await Promise.all(newAttempts);
  const admitted = newResults.filter((o) => o.r.client);
  for (const o of admitted) o.r.client.terminate();
  const windowS = (Math.max(...newResults.map((o) => o.at)) - t0) / 1000;
  const allowed = 1 + Math.floor(B_PER_SECOND * windowS);
  const details = {};
  for (const o of newResults) if (o.r.rejected) details[o.r.rejected.body?.detail] = (details[o.r.rejected.body?.detail] || 0) + 1;
  t.diagnostic(`new sessions during the burst: ${admitted.length} of ${newResults.length} admitted; refusals ${JSON.stringify(details)}`);
  assert.ok(admitted.length <= allowed,
    `${admitted.length} of ${newResults.length} new sessions were admitted during the ${windowS.toFixed(2)} s burst; B's budget allows ${allowed}`);
  for (const o of newResults) if (o.r.rejected) expectRejection(o.r.rejected, 429, 'rate_limited', 'new session during the burst');

  // Visitors continue from hello.have + 1; every agent ends with every frame.
  for (const o of results) {
    const { x } = o;
    const h = o.r.client.hello;
    if (o.role === 'visitor') {
      assert.ok(h.have >= 5 && h.have <= 8, `visitor hello.have ${h.have} in 5..8`);
      assert.equal(h.next_seq, Math.max(h.have, 8) + 1, 'hello.next_seq follows the last seq sent (8)');
      x.v2 = o.r.client;
      x.page.attach(x.v2); // resends from have + 1
      for (let k = 0; k < 2; k++) x.page.event(payloadFor(x.page.nextSeq, 120));
    } else {
      assert.equal(h.resume, 'continue', `agent resume=${x.agentLast}: ${JSON.stringify(h)}`);
      assert.equal(h.from, x.agentLast + 1, `agent resume=${x.agentLast}: hello.from`);
      x.a2 = o.r.client;
    }
  }
  await Promise.all(sessions.map((x) => Promise.all([x.page.acked(10, 20_000), x.a2.waitForSeq(10, 20_000)])));
  await sleep(200);
  for (const [k, x] of sessions.entries()) {
    const view = agentView([...x.agentItems1, ...x.a2.items], `agent ${k}`);
    assertFramesEqual(view.frames, x.page, 1, 10, `agent ${k} (both connections)`);
  }

  // The refused new sessions get in when they retry after Retry-After.
  const late = await Promise.all(newResults.filter((o) => o.r.rejected).map((o) =>
    connectWithRetry(() => connectVisitor(S.relayUrl, o.f.visitor_token), { deadlineMs: 20_000, maxWaitMs: 3000 })
      .catch((e) => { throw e instanceof HandshakeRejected ? new Error(`a new session was still refused after retrying: ${e.message}`) : e; })));
  for (const c of late) {
    track(c);
    assert.equal(c.hello.have, 0);
  }
});
