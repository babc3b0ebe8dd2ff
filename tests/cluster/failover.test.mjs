// kill -9 of a node holding 500 streaming sessions, behind HAProxy as operators run it
// (docs/cluster.md "Failures": a node dies). Every session has a client on the killed node (even
// sessions: the visitor; odd ones: the agent), the other client on one of the two others. When
// node 2 dies its clients reconnect through HAProxy with resume: all are admitted (the priority
// lane passes the node's handshake budget), and every agent ends with every frame exactly once,
// in order. New sessions arriving on the surviving nodes during the burst are over the nodes'
// handshake budget: 429 rate_limited with Retry-After.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import {
  connectVisitor, connectAgent, handshake, VisitorPage, agentView, assertFramesEqual, payloadFor,
  connectWithRetry, expectRejection,
} from '../relay/lib/relay.mjs';
import { pool } from '../relay/lib/pool.mjs';
import { startCluster } from './lib/cluster.mjs';
import { startHaproxy } from './lib/haproxy.mjs';

const N = 500;
// New sessions sent at once at the kill, half to each surviving node: 240 handshakes at a node
// whose budget is 100 a second (burst 100) are refused from the 101st on unless they take longer
// than (240 - 100) / 100 = 1.4 s to arrive, whatever the resumes take from the same budget (they
// draw from it too, but are never refused by it). With fewer, whether any was refused depended
// on when the resumes happened to arrive.
const NEW = 480;
const KILLED = 2;
const HANDSHAKES_PER_SECOND = 100;
let C, P, LB, tenant, fresh;
const open = new Set();
const track = (c) => { open.add(c); return c; };

before(async () => {
  C = await startCluster({
    n: 3, name: 'failover',
    // Node 2 takes 500 first connections: it gets a budget that does not slow the setup.
    flags: { 'relay-handshakes-per-second': HANDSHAKES_PER_SECOND },
    nodeFlags: (i) => (i === KILLED ? { 'relay-handshakes-per-second': 2000 } : {}),
  });
  P = C.P;
  LB = await startHaproxy(C.nodes, { balance: 'roundrobin' });
  tenant = await P.tenant();
});

after(async () => {
  for (const c of open) c.terminate();
  await LB?.stop();
  if (C) await C.stop();
});

test('kill -9 of a node with 500 streaming sessions: all resume through HAProxy with zero lost frames; new sessions get 429', async (t) => {
  const t0 = Date.now();
  const sessions = await pool(Array.from({ length: N }, (_, k) => k), 16, async (k) => {
    const s = await P.session(tenant.id);
    const tok = await P.agentToken(tenant.id, s.id);
    // Even: visitor on the killed node, agent on 0 or 1. Odd: agent on the killed node.
    const other = (k >> 1) % 2;
    return { k, s, agentToken: tok.token, vNode: k % 2 ? other : KILLED, aNode: k % 2 ? KILLED : other };
  });
  fresh = await pool(Array.from({ length: NEW }, (_, k) => k), 16, () => P.session(tenant.id));
  t.diagnostic(`created ${N + NEW} sessions in ${Date.now() - t0} ms`);

  const t1 = Date.now();
  await pool(sessions, 50, async (x) => {
    x.v = track(await connectWithRetry(() => connectVisitor(C.nodes[x.vNode].relayUrl, x.s.visitor_token), { deadlineMs: 60_000 }));
    x.page = new VisitorPage();
    x.page.attach(x.v);
    x.page.snapshot(payloadFor(1, 600, 'snap'));
    for (let k = 0; k < 4; k++) x.page.event(payloadFor(x.page.nextSeq, 120));
    x.a = track(await connectWithRetry(() => connectAgent(C.nodes[x.aNode].relayUrl, x.agentToken), { deadlineMs: 60_000 }));
  });
  await Promise.all(sessions.map((x) => Promise.all([x.page.acked(5, 30_000), x.a.waitForSeq(5, 30_000)])));
  t.diagnostic(`1,000 first connections, 5 frames each delivered, in ${Date.now() - t1} ms`);

  // Still streaming when the node dies: three more frames each, not waited for.
  for (const x of sessions) for (let k = 0; k < 3; k++) x.page.event(payloadFor(x.page.nextSeq, 120));
  await C.kill(KILLED);
  const gone = sessions.map((x) => (x.vNode === KILLED ? x.v : x.a));
  await Promise.all(gone.map((c) => c.closed));
  for (const x of sessions) {
    if (x.vNode === KILLED) x.page.detach();
    else x.agentItems1 = x.a.items.slice();
  }

  // Their clients come back through HAProxy with resume (HAProxy sends a connection refused by
  // the dead node to another); new sessions arrive on the surviving nodes meanwhile.
  const t2 = Date.now();
  const attempts = sessions.map((x) => (x.vNode === KILLED
    ? handshake(LB.relayUrl, x.s.visitor_token, { resume: x.page.lastSeq, label: 'visitor back' })
    : handshake(LB.relayUrl, x.agentToken, { resume: x.a.lastSeq, label: 'agent back' })
  ).then((r) => ({ x, r })));
  const news = fresh.map((f, k) => handshake(C.nodes[k % 2].relayUrl, f.visitor_token, { label: 'new session' }));
  const results = await Promise.all(attempts);
  for (const o of results) if (o.r.client) track(o.r.client);
  const refused = results.filter((o) => o.r.rejected);
  assert.deepEqual(refused.slice(0, 5).map((o) => `${o.r.rejected.status} ${o.r.rejected.text}`), [],
    `every resume is admitted (${refused.length} of ${N} refused)`);
  await Promise.all(results.map(async (o) => { o.r.client.hello = await o.r.client.nextJson('hello', 20_000); }));
  t.diagnostic(`500 resumes through HAProxy: every hello ${Date.now() - t2} ms after the kill`);

  const newResults = await Promise.all(news);
  for (const r of newResults) if (r.client) r.client.terminate();
  const newRefused = newResults.filter((r) => r.rejected);
  t.diagnostic(`new sessions during the burst: ${NEW - newRefused.length} of ${NEW} admitted`);
  assert.ok(newRefused.length > 0, 'new sessions over the surviving nodes\' handshake budget are refused');
  for (const r of newRefused) expectRejection(r.rejected, 429, 'rate_limited', 'a new session during the burst');

  // The visitors resend what the dead node had not acknowledged, then two more frames each.
  for (const o of results) {
    const { x } = o;
    if (x.vNode === KILLED) {
      x.page.attach(o.r.client);
    } else {
      x.a2 = o.r.client;
    }
  }
  for (const x of sessions) for (let k = 0; k < 2; k++) x.page.event(payloadFor(x.page.nextSeq, 120));
  const last = 10;
  await Promise.all(sessions.map(async (x) => {
    await x.page.acked(last, 30_000);
    await (x.a2 || x.a).waitForSeq(last, 30_000);
  }));
  for (const x of sessions) {
    const items = x.a2 ? [...x.a.items.filter((i) => i.t !== 'close'), ...x.a2.items] : x.a.items;
    const view = agentView(items, `session ${x.k}'s agent`);
    assertFramesEqual(view.frames, x.page, 1, last, `session ${x.k}'s agent`);
  }
  t.diagnostic(`every agent has frames 1..${last} exactly once, ${Date.now() - t2} ms after the kill`);
});
