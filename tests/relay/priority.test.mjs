// The priority lane (docs/protocol.md "Connecting": resume): after a node loses every
// connection at once, 1,000 clients reconnect with resume at once; they are all admitted, fast,
// and nothing is lost, while new sessions arriving during the burst are turned away with 429.
//
// Tenants and limits (limits are copied into each token when it is minted, so they must be
// right before minting; PATCHing a tenant later would not change the tokens already out):
// - tenant A (RELAY_LIMITS: high sessions_per_minute, concurrent_sessions 5000) holds the 500
//   ongoing sessions, so that creating them (REST) and first connecting them (relay) is not
//   slowed by A's own new-session budget;
// - tenant B has sessions_per_minute 600 (10 new sessions a second); its new sessions arrive in
//   the middle of the burst and must get 429 rate_limited with Retry-After, then be admitted
//   when they retry after it;
// - the node's handshake budget is --relay-handshakes-per-second 300: the burst of 1,000
//   resumes saturates it (the lane exists for exactly that), and the first connections of the
//   1,000 sockets are paced by it (they retry on 429 after Retry-After, as clients must).

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import {
  connectVisitor, connectAgent, handshake, VisitorPage, agentView, assertFramesEqual,
  payloadFor, connectWithRetry, expectRejection, sleep,
} from './lib/relay.mjs';
import { platform } from './lib/platform.mjs';
import { startServer, assertCleanExit } from './lib/server.mjs';

const N = 500;
const NEW = 21;
const HANDSHAKES_PER_SECOND = 300;
let S, P, A, B;
const open = new Set();
const track = (c) => { open.add(c); return c; };

before(async () => {
  S = await startServer({
    name: 'relay-priority',
    flags: { 'relay-handshakes-per-second': HANDSHAKES_PER_SECOND },
  });
  P = platform(S);
  A = await P.tenant();
  B = await P.tenant({ limits: { sessions_per_minute: 600 } });
});

after(async () => {
  for (const c of open) c.terminate();
  if (S) assertCleanExit(await S.stop());
});

/** Runs fn over items with at most `width` at a time. */
async function pool(items, width, fn) {
  const out = new Array(items.length);
  let next = 0;
  await Promise.all(Array.from({ length: width }, async () => {
    while (next < items.length) {
      const k = next++;
      out[k] = await fn(items[k], k);
    }
  }));
  return out;
}

test('priority lane: 1,000 sockets dropped at once all resume within 5 s with nothing lost; new sessions during the burst get 429', async (t) => {
  // 500 sessions of A, each with a visitor and one agent.
  const setup0 = Date.now();
  const sessions = await pool(Array.from({ length: N }, (_, k) => k), 16, async () => {
    const s = await P.session(A.id);
    const tok = await P.agentToken(A.id, s.id);
    return { s, agentToken: tok.token };
  });
  const fresh = await pool(Array.from({ length: NEW }, (_, k) => k), 8, () => P.session(B.id));
  t.diagnostic(`created ${N + NEW} sessions in ${Date.now() - setup0} ms`);

  const conn0 = Date.now();
  await pool(sessions, 100, async (x) => {
    x.v = track(await connectWithRetry(() => connectVisitor(S.relayUrl, x.s.visitor_token), { deadlineMs: 30_000 }));
    x.page = new VisitorPage();
    x.page.attach(x.v);
    x.page.snapshot(payloadFor(1, 600, 'snap'));
    for (let k = 0; k < 4; k++) x.page.event(payloadFor(x.page.nextSeq, 120));
    x.a = track(await connectWithRetry(() => connectAgent(S.relayUrl, x.agentToken, { record: 'full' }), { deadlineMs: 30_000 }));
  });
  await Promise.all(sessions.map((x) => Promise.all([x.page.acked(5, 20_000), x.a.waitForSeq(5, 20_000)])));
  t.diagnostic(`1,000 first connections in ${Date.now() - conn0} ms`);

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

  // All reconnect with resume at once; B's new sessions arrive in the middle of the burst.
  const t0 = Date.now();
  const attempts = [];
  const newAttempts = [];
  sessions.forEach((x, k) => {
    attempts.push(handshake(S.relayUrl, x.s.visitor_token, { resume: x.page.lastSeq, label: `visitor ${k}` }).then((r) => ({ x, role: 'visitor', r })));
    attempts.push(handshake(S.relayUrl, x.agentToken, { resume: x.agentLast, label: `agent ${k}` }).then((r) => ({ x, role: 'agent', r })));
    if (k % Math.floor(N / 3) === Math.floor(N / 6) && newAttempts.length < NEW) {
      for (let j = 0; j < NEW / 3; j++) {
        const f = fresh[newAttempts.length];
        newAttempts.push(handshake(S.relayUrl, f.visitor_token, { label: 'new visitor' }).then((r) => ({ f, r })));
      }
    }
  });
  const results = await Promise.all(attempts);
  const refused = results.filter((o) => o.r.rejected);
  for (const o of results) if (o.r.client) track(o.r.client);
  assert.deepEqual(refused.slice(0, 5).map((o) => `${o.role}: ${o.r.rejected.status} ${o.r.rejected.text}`), [],
    `every resume handshake is admitted (${refused.length} of ${results.length} refused)`);
  const hellos = await Promise.all(results.map(async (o) => {
    o.r.client.hello = await o.r.client.nextJson('hello', 10_000);
    return Date.now();
  }));
  const allIn = Math.max(...hellos) - t0;
  t.diagnostic(`1,000 resumes: all hellos ${allIn} ms after the burst began`);
  assert.ok(allIn <= 5000, `all 1,000 resumed within ${allIn} ms (limit 5000)`);

  const newResults = await Promise.all(newAttempts);
  const admitted = newResults.filter((o) => o.r.client);
  for (const o of admitted) o.r.client.terminate();
  assert.equal(admitted.length, 0, `${admitted.length} of ${newResults.length} new sessions were admitted during the resume burst`);
  for (const o of newResults) expectRejection(o.r.rejected, 429, 'rate_limited', 'new session during the burst');

  // Visitors continue from hello.have + 1; every agent ends with every frame.
  for (const o of results) {
    const { x } = o;
    if (o.role === 'visitor') {
      const h = o.r.client.hello;
      assert.ok(h.have >= 5 && h.have <= 8, `visitor hello.have ${h.have} in 5..8`);
      assert.equal(h.next_seq, h.have + 1);
      x.v2 = o.r.client;
      x.page.attach(x.v2); // resends from have + 1
      for (let k = 0; k < 2; k++) x.page.event(payloadFor(x.page.nextSeq, 120));
    } else {
      const h = o.r.client.hello;
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
  const late = await Promise.all(fresh.map((f) => connectWithRetry(() => connectVisitor(S.relayUrl, f.visitor_token), { deadlineMs: 20_000, maxWaitMs: 5000 })));
  for (const c of late) { track(c); assert.equal(c.hello.have, 0); }
});
