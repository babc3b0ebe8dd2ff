// A session spanning nodes (docs/cluster.md "Agents on another node", docs/protocol.md
// "Ordering, resume and fencing"): three cobrowsed nodes on one Redis and one PostgreSQL; the
// visitor on one node, agents on the others. The guarantees are those of one node: every agent
// gets every frame in seq order, once, byte for byte; a late join gets the latest snapshot and
// everything since; a resume gets exactly what is missing; a visitor moving node loses nothing;
// a newer visitor connection on another node fences the older one (4002).

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import {
  VisitorPage, agentView, assertFramesEqual, payloadFor,
} from '../relay/lib/relay.mjs';
import { startCluster, clientsOn } from './lib/cluster.mjs';

let C, P, tenant, agentOn, visitorOn;
const open = new Set();

before(async () => {
  C = await startCluster({ n: 3, name: 'sessions' });
  P = C.P;
  tenant = await P.tenant();
  ({ agentOn, visitorOn } = clientsOn(C, tenant.id, open));
});

after(async () => {
  for (const c of open) c.terminate();
  if (C) await C.stop();
});


/** Sends n event frames, keeping at most ~1 MiB in the socket's buffer. */
async function stream(page, client, n, size = 200) {
  for (let k = 0; k < n; k++) {
    page.event(payloadFor(page.nextSeq, size));
    if (k % 64 === 63) await client.drain(1 << 20);
  }
}

test('cross-node ordering under load: agents on two other nodes get every frame in seq order, once', async () => {
  const s = await P.session(tenant.id);
  const v = await visitorOn(0, s);
  const page = new VisitorPage();
  page.attach(v);
  page.snapshot(payloadFor(1, 2000, 'snap'));
  await page.acked(1);
  const agents = [await agentOn(1, s), await agentOn(2, s), await agentOn(1, s), await agentOn(2, s)];
  // Under load: 3,000 frames sent as fast as the socket takes them, a snapshot in the middle.
  await stream(page, v, 1500);
  page.snapshot(payloadFor(page.nextSeq, 4000, 'snap'));
  await stream(page, v, 1499);
  const last = page.lastSeq;
  await page.acked(last, 30_000);
  await Promise.all(agents.map((a) => a.waitForSeq(last, 30_000)));
  for (const [k, a] of agents.entries()) {
    const view = agentView(a.items, a.label);
    assert.equal(view.resets.length, 1, `${a.label} ${k}: one reset (the join) before the page: ${a.describe()}`);
    assertFramesEqual(view.frames, page, 1, last, `${a.label} ${k}`);
  }
});

test('late join on another node: the latest snapshot and every frame since, then live frames', async () => {
  const s = await P.session(tenant.id);
  const v = await visitorOn(0, s);
  const page = new VisitorPage();
  page.attach(v);
  page.snapshot(payloadFor(1, 1000, 'snap'));
  await stream(page, v, 19);
  const snap = page.snapshot(payloadFor(21, 1000, 'snap'));
  await stream(page, v, 19);
  await page.acked(40);
  const a = await agentOn(1, s);
  await a.waitForSeq(40, 10_000);
  await stream(page, v, 10);
  await a.waitForSeq(50, 10_000);
  const view = agentView(a.items, a.label);
  assert.equal(view.resets[0]?.seq, snap, `the join starts at the latest snapshot (${snap}): ${a.describe()}`);
  assertFramesEqual(view.frames, page, snap, 50, a.label);
});

test('agent resume on another node: exactly the frames it missed, then live frames', async () => {
  const s = await P.session(tenant.id);
  const v = await visitorOn(0, s);
  const page = new VisitorPage();
  page.attach(v);
  page.snapshot(payloadFor(1, 1000, 'snap'));
  await stream(page, v, 19);
  const a1 = await agentOn(1, s);
  await a1.waitForSeq(20, 10_000);
  await a1.terminate();
  const had = a1.lastSeq;
  await stream(page, v, 20);
  await page.acked(40);

  const a2 = await agentOn(2, s, { token: a1.token, resume: had });
  assert.equal(a2.hello.resume, 'continue', `a resume within the history continues: ${JSON.stringify(a2.hello)}`);
  assert.equal(a2.hello.from, had + 1, 'hello.from');
  await a2.waitForSeq(40, 10_000);
  await stream(page, v, 5);
  await a2.waitForSeq(45, 10_000);
  const view = agentView([...a1.items, ...a2.items], 'agent across two nodes');
  assertFramesEqual(view.frames, page, 1, 45, 'agent across two nodes');
  const second = agentView(a2.items, a2.label);
  assertFramesEqual(second.frames, page, had + 1, 45, `${a2.label} (only what was missing)`);
});

test('a visitor moving node mid-stream loses nothing: agents on a third node get every frame once', async () => {
  const s = await P.session(tenant.id);
  const v1 = await visitorOn(0, s);
  const page = new VisitorPage();
  page.attach(v1);
  page.snapshot(payloadFor(1, 1000, 'snap'));
  const a = await agentOn(2, s);
  await stream(page, v1, 99);
  await page.acked(50, 10_000);
  // Gone without a close, frames possibly unacknowledged: they stay in the page's outbox.
  await v1.terminate();
  page.detach();
  await stream(page, { drain: async () => {} }, 20); // written while disconnected: outbox only
  const v2 = await visitorOn(1, s, { resume: page.lastSeq });
  assert.ok(v2.hello.have >= 50 && v2.hello.have <= page.lastSeq,
    `the new node knows what the old one stored: have ${v2.hello.have} (acked ${page.ackedSeq}, sent ${page.lastSeq})`);
  page.attach(v2); // resends from have + 1
  await stream(page, v2, 30);
  const last = page.lastSeq;
  await page.acked(last, 20_000);
  await a.waitForSeq(last, 20_000);
  const view = agentView(a.items, a.label);
  assertFramesEqual(view.frames, page, 1, last, a.label);
  assert.equal(a.jsonOf('reset').length, 1, `no reset beyond the join: ${a.describe()}`);
});

test('fencing across nodes: a newer visitor on another node closes the older with 4002', async () => {
  const s = await P.session(tenant.id);
  const v1 = await visitorOn(0, s);
  const page = new VisitorPage();
  page.attach(v1);
  page.snapshot(payloadFor(1, 500, 'snap'));
  await stream(page, v1, 9);
  await page.acked(10);
  const a = await agentOn(2, s);
  await a.waitForSeq(10, 10_000);

  const v2 = await visitorOn(1, s, { resume: page.lastSeq });
  const closed = await v1.nextClose(5000);
  assert.equal(closed.code, 4002, `the older visitor connection is replaced: ${v1.describe()}`);
  assert.equal(v2.hello.have, 10, 'the newer visitor continues from what the session holds');
  page.attach(v2);
  await stream(page, v2, 10);
  await page.acked(20);
  await a.waitForSeq(20, 10_000);
  assertFramesEqual(agentView(a.items, a.label).frames, page, 1, 20, a.label);
  assert.ok(v2.open, 'the newer visitor stays connected');
});
