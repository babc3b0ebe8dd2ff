// A session's life across nodes (docs/cluster.md "Failures" and "Following a session on another
// node"): draining a node (SIGTERM) hands its clients to the others, which take them back with
// resume and lose nothing; a session is idle only when nobody is connected on any node: a node
// whose own clients left drops its copy and the session goes on elsewhere, and once everybody
// left it ends as `idle` on every node.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import {
  VisitorPage, agentView, assertFramesEqual, payloadFor,
} from '../relay/lib/relay.mjs';
import { eventually } from '../relay/lib/platform.mjs';
import { startCluster, clientsOn } from './lib/cluster.mjs';

const IDLE_SECONDS = 2;
let C, P, tenant, agentOn, visitorOn;
const open = new Set();

before(async () => {
  C = await startCluster({
    n: 3, name: 'lifecycle',
    flags: { 'relay-idle-seconds': IDLE_SECONDS, 'relay-drain-seconds': 5 },
  });
  P = C.P;
  tenant = await P.tenant();
  ({ agentOn, visitorOn } = clientsOn(C, tenant.id, open));
});

after(async () => {
  for (const c of open) c.terminate();
  if (C) await C.stop();
});

test('draining a node hands its visitor and agents to the others: they resume there and lose nothing', async () => {
  const s = await P.session(tenant.id);
  const v = await visitorOn(1, s);
  const page = new VisitorPage();
  page.attach(v);
  page.snapshot(payloadFor(1, 800, 'snap'));
  for (let k = 0; k < 9; k++) page.event(payloadFor(page.nextSeq, 200));
  const stays = await agentOn(0, s);
  const moves = await agentOn(1, s);
  await page.acked(10);
  await Promise.all([stays.waitForSeq(10), moves.waitForSeq(10)]);

  // Still streaming when node 1 is told to stop: three frames not waited for.
  for (let k = 0; k < 3; k++) page.event(payloadFor(page.nextSeq, 200));
  C.nodes[1].child.kill('SIGTERM');
  const [vc, ac] = await Promise.all([v.nextClose(5000), moves.nextClose(5000)]);
  for (const c of [vc, ac]) {
    assert.equal(c.code, 1012, `drained with 1012: ${c.code} ${c.reason}`);
    assert.ok(JSON.parse(c.reason).retry_ms > 0, `a retry_ms: ${c.reason}`);
  }
  page.detach();

  // Back on node 2 with resume: the visitor resends what node 1 had not acknowledged.
  const v2 = await visitorOn(2, s, { resume: page.lastSeq });
  page.attach(v2);
  const moved = await agentOn(2, s, { token: moves.token, resume: moves.lastSeq });
  for (let k = 0; k < 5; k++) page.event(payloadFor(page.nextSeq, 200));
  const last = page.lastSeq;
  await page.acked(last, 20_000);
  await Promise.all([stays.waitForSeq(last, 20_000), moved.waitForSeq(last, 20_000)]);
  assertFramesEqual(agentView(stays.items, 'the agent on node 0').frames, page, 1, last, 'the agent on node 0');
  const both = [...moves.items.filter((i) => i.t !== 'close'), ...moved.items];
  assertFramesEqual(agentView(both, 'the agent that moved').frames, page, 1, last, 'the agent that moved');
  const exit = await C.nodes[1].exited;
  assert.equal(exit.code, 0, `the drained node exits cleanly: ${C.nodes[1].log().slice(-2000)}`);
  await Promise.all([stays.terminate(), moved.terminate(), v2.terminate()]);
});

test('idle across nodes: a node whose clients left drops its copy, the session goes on elsewhere, and ends idle once nobody is anywhere', async () => {
  const s = await P.session(tenant.id);
  const v = await visitorOn(0, s);
  const page = new VisitorPage();
  page.attach(v);
  page.snapshot(payloadFor(1, 500, 'snap'));
  const a = await agentOn(2, s);
  await a.waitForSeq(1);

  // The visitor leaves node 0; the agent stays on node 2. Node 0 is idle on its own for more
  // than --relay-idle-seconds, but the session is not: the agent stays connected, nothing ends.
  await v.close();
  page.detach();
  await a.next((i) => i.t === 'json' && i.msg.type === 'visitor' && i.msg.state === 'disconnected', 5000, 'visitor disconnected');
  // Node 0 asks Redis once its own idle time is over, hears the agent is there, and drops its copy
  // (its relay_sessions_live goes back to 0) without ending the session.
  await eventually(async () => /^relay_sessions_live 0$/m.test(await (await fetch(`${C.nodes[0].baseUrl}/metrics`)).text()),
    20_000, "node 0 dropped its copy of the session", 200);
  assert.equal((await P.getSession(tenant.id, s.id)).status !== 'ended', true, 'the session goes on while the agent is connected');
  assert.equal(a.closeInfo, null, `the agent is still connected: ${a.describe()}`);

  // A visitor comes back on node 0, sends more; the agent gets it.
  const v2 = await visitorOn(0, s, { resume: page.lastSeq });
  page.attach(v2);
  page.event(payloadFor(page.nextSeq, 100));
  await a.waitForSeq(page.lastSeq);

  // Everybody leaves: the session ends as idle, and its tokens are refused on every node.
  await Promise.all([v2.close(), a.close()]);
  page.detach();
  const ended = await eventually(async () => {
    const x = await P.getSession(tenant.id, s.id);
    return x.status === 'ended' ? x : false;
  }, 20_000, 'the session ended as idle', 200);
  assert.equal(ended.end_reason, 'idle');
});
