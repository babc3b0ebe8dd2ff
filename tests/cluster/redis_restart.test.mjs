// Redis restarted mid-session (docs/cluster.md "Failures": Redis is down). redis-server is
// killed (kill -9) and started again empty, as after losing it for good:
// - no node crashes, and /readyz says `redis: down` meanwhile;
// - a session whose visitor and agents are all on one node keeps working there;
// - a new join on a node that does not hold the session is refused after the upgrade with 4503
//   {"code":"cluster_unavailable","retry_ms":N};
// - once Redis is back, each session asks its visitor for a snapshot (`snapshot_request`,
//   reason `cluster`), and from it on no frame is lost: agents connected all along and agents
//   joining afterwards on another node get the snapshot and every frame after it, in order.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import {
  connectVisitor, connectAgent, handshake, VisitorPage, agentView, assertFramesEqual, payloadFor,
} from '../relay/lib/relay.mjs';
import { eventually } from '../relay/lib/platform.mjs';
import { startCluster, getJson } from './lib/cluster.mjs';

let C, P, tenant;
const open = new Set();
const track = (c) => { open.add(c); return c; };

before(async () => {
  C = await startCluster({ n: 3, name: 'redis-restart' });
  P = C.P;
  tenant = await P.tenant();
});

after(async () => {
  for (const c of open) c.terminate();
  if (C) await C.stop();
});

const relay = (i) => C.nodes[i].relayUrl;
const redisDown = (r) => r.status === 503 && /"redis"\s*:\s*"down"/.test(r.text);

async function sessionWith(vNode, aNode) {
  const s = await P.session(tenant.id);
  const v = track(await connectVisitor(relay(vNode), s.visitor_token, { label: `visitor on node-${vNode}` }));
  // Answers snapshot_request with a snapshot, as the SDK does.
  const page = new VisitorPage({ autoSnapshot: (seq) => payloadFor(seq, 800, 'snap') });
  page.attach(v);
  page.snapshot(payloadFor(1, 800, 'snap'));
  const tok = (await P.agentToken(tenant.id, s.id)).token;
  const a = track(await connectAgent(relay(aNode), tok, { label: `agent on node-${aNode}` }));
  return { s, v, page, a };
}

function events(page, n) { for (let k = 0; k < n; k++) page.event(payloadFor(page.nextSeq, 150)); }

test('Redis restarted mid-session: no crash, local sessions go on, cross-node joins get 4503, nothing lost after recovery', async () => {
  const local = await sessionWith(0, 0);
  const cross = await sessionWith(0, 1);
  for (const x of [local, cross]) {
    events(x.page, 9);
    await x.page.acked(10);
    await x.a.waitForSeq(10, 10_000);
  }

  await C.redis.kill();
  await eventually(async () => redisDown(await getJson(`${C.nodes[0].baseUrl}/readyz`)), 10_000,
    '/readyz of node-0 saying redis: down');

  // The session held by node 0 alone keeps working there.
  events(local.page, 10);
  await local.page.acked(20, 10_000);
  await local.a.waitForSeq(20, 10_000);
  events(cross.page, 5);

  // A new agent of the cross-node session on a node that does not hold it.
  const tok = (await P.agentToken(tenant.id, cross.s.id)).token;
  const r = await handshake(relay(2), tok, { label: 'agent joining while Redis is down' });
  assert.ok(r.client, `refused after the upgrade, not as HTTP: ${r.rejected && r.rejected.text}`);
  const closed = await track(r.client).nextClose(10_000);
  assert.equal(closed.code, 4503, `close code: ${r.client.describe()}`);
  const reason = JSON.parse(closed.reason);
  assert.equal(reason.code, 'cluster_unavailable', closed.reason);
  assert.ok(Number.isInteger(reason.retry_ms) && reason.retry_ms > 0, `retry_ms: ${closed.reason}`);

  for (let i = 0; i < 3; i++) assert.ok(C.alive(i), `node-${i} is still running\n${C.tails()}`);

  // Redis comes back, empty.
  await C.redis.start();
  await Promise.all(C.nodes.map((n) => eventually(async () => (await getJson(`${n.baseUrl}/readyz`)).status === 200,
    15_000, `/readyz of ${n.nodeId} back to 200`)));
  const snaps = {};
  for (const [name, x] of Object.entries({ local, cross })) {
    await eventually(() => x.page.snapshotRequests.some((m) => m.reason === 'cluster'), 15_000,
      `${name}: snapshot_request (cluster) to the visitor (got ${JSON.stringify(x.page.snapshotRequests)})`);
    snaps[name] = x.page.snapshotRequests.find((m) => m.reason === 'cluster').atSeq + 1;
  }

  // From the recovery snapshot on, nothing is lost, for agents old and new, on any node.
  for (const x of [local, cross]) events(x.page, 10);
  for (const [name, x] of Object.entries({ local, cross })) {
    const last = x.page.lastSeq;
    await x.page.acked(last, 15_000);
    await x.a.waitForSeq(last, 15_000);
    const view = agentView(x.a.items, `${name}: ${x.a.label}`);
    const from = view.frames.findIndex((f) => f.seq === snaps[name]);
    assert.ok(from >= 0, `${name}: ${x.a.label} got the recovery snapshot ${snaps[name]}: ${x.a.describe()}`);
    assertFramesEqual(view.frames.slice(from), x.page, snaps[name], last, `${name}: ${x.a.label} after recovery`);
    if (name === 'local') assertFramesEqual(view.frames, x.page, 1, last, `${name}: ${x.a.label}, all along`);

    const t2 = (await P.agentToken(tenant.id, x.s.id)).token;
    const late = track(await connectAgent(relay(2), t2, { label: `${name}: agent joining node-2 after recovery` }));
    await late.waitForSeq(last, 15_000);
    const lv = agentView(late.items, late.label);
    assertFramesEqual(lv.frames, x.page, snaps[name], last, late.label);
  }
  for (let i = 0; i < 3; i++) assert.ok(C.alive(i), `node-${i} is still running`);
});
