// Relay data path (docs/protocol.md "Data frames", "Ordering, resume and fencing"): ordering,
// late joiners, agent and visitor resume, gaps and duplicates, fencing of an older visitor.
// Runs against the server of scripts/test.sh (or a private one, see lib/platform.mjs).

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import {
  connectVisitor, connectAgent, handshake, VisitorPage, agentView, assertFramesEqual,
  payloadFor, encodeFrame, KIND_SNAPSHOT, KIND_EVENT, HEADER_BYTES, sleep,
} from './lib/relay.mjs';
import { platform, defaultServer } from './lib/platform.mjs';
import { assertCleanExit } from './lib/server.mjs';

let srv, P, tenant;
const open = new Set(); // clients to close at the end

before(async () => {
  srv = await defaultServer();
  P = platform(srv);
  tenant = await P.tenant();
});

after(async () => {
  for (const c of open) c.terminate();
  if (srv && srv.own) assertCleanExit(await srv.stop());
});

const track = (c) => { open.add(c); return c; };

async function visitorOn(session, opts = {}) {
  return track(await connectVisitor(srv.relayUrl, session.visitor_token, opts));
}

async function agentOn(session, opts = {}, tokenOpts = {}) {
  const t = await P.agentToken(tenant.id, session.id, tokenOpts);
  const a = track(await connectAgent(srv.relayUrl, t.token, opts));
  a.token = t.token;
  a.agentId = t.agent.id;
  return a;
}

/** The resets an agent got when it joined must be reset(join) to the snapshot `snapSeq`. */
function assertJoin(agent, view, snapSeq) {
  assert.ok(['continue', 'reset'].includes(agent.hello.resume), `hello.resume: ${JSON.stringify(agent.hello)}`);
  if (agent.hello.resume === 'reset') {
    assert.ok(view.resets.length >= 1, `hello said reset, but no reset came: ${agent.describe()}`);
    assert.equal(view.resets[0].reason, 'join', `first reset: ${JSON.stringify(view.resets[0])}`);
    assert.equal(view.resets[0].seq, snapSeq, `first reset: ${JSON.stringify(view.resets[0])}`);
  }
  assert.equal(view.frames[0].kind, KIND_SNAPSHOT, 'the first frame a joining agent gets is the snapshot');
  assert.equal(view.frames[0].seq, snapSeq, 'the first frame a joining agent gets is the latest snapshot');
}

test('ordering under load: 5,000 events reach 3 agents in seq order, once each, byte-identical', async () => {
  const s = await P.session(tenant.id);
  const v = await visitorOn(s);
  assert.equal(v.hello.session_id, s.id, 'hello.session_id');
  assert.equal(v.hello.have, 0, 'a new session has nothing yet');
  assert.equal(v.hello.next_seq, 1, 'a new session starts at seq 1');
  const page = new VisitorPage();
  page.attach(v);
  page.snapshot(payloadFor(1, 3000, 'snap'));
  await page.acked(1);
  const agents = await Promise.all([0, 1, 2].map(() => agentOn(s)));
  await Promise.all(agents.map((a) => a.waitForSeq(1)));

  for (let k = 0; k < 5000; k++) page.event(payloadFor(page.nextSeq, 40 + ((k * 37) % 600)));
  const last = page.lastSeq;
  assert.equal(last, 5001);
  await Promise.all(agents.map((a) => a.waitForSeq(last, 60_000)));
  await page.acked(last, 30_000);
  await sleep(150); // anything extra would have arrived by now
  agents.forEach((a, k) => {
    const view = agentView(a.items, `agent ${k}`);
    assertJoin(a, view, 1);
    assert.equal(view.resets.length, a.hello.resume === 'reset' ? 1 : 0, `agent ${k}: no reset after the join: ${JSON.stringify(view.resets)}`);
    assertFramesEqual(view.frames, page, 1, last, `agent ${k}`);
  });
});

test('1 MiB frames reach agents byte for byte when the kernel takes only part of a write', async () => {
  // An agent that stops reading fills its socket (about 4 MiB here): the relay's sendmsg() then
  // comes back short in the middle of a frame, and the rest of that frame must go out before
  // anything else (core/relay/relay_ws.c, flush_queue). A late joiner gets 8 MiB of history at once.
  const size = (1 << 20) - HEADER_BYTES - 64; // just under the default frame limit
  const s = await P.session(tenant.id);
  const v = await visitorOn(s);
  const page = new VisitorPage();
  page.attach(v);
  page.snapshot(payloadFor(1, size, 'snap'));
  await page.acked(1, 30_000);
  const paused = await agentOn(s, {}, { id: 'agent-big-paused' });
  await paused.waitForSeq(1, 30_000);
  paused.pause();
  for (let k = 0; k < 7; k++) page.event(payloadFor(page.nextSeq, size));
  await page.acked(8, 30_000);
  await sleep(200);
  const late = await agentOn(s, {}, { id: 'agent-big-late' });
  paused.resume();
  await Promise.all([late.waitForSeq(8, 30_000), paused.waitForSeq(8, 30_000)]);
  await sleep(100);
  for (const [a, name] of [[late, 'late agent'], [paused, 'paused agent']]) {
    const view = agentView(a.items, name);
    assertJoin(a, view, 1);
    assert.deepEqual(view.resets.filter((r) => r.reason !== 'join'), [], `${name}: no reset`);
    assertFramesEqual(view.frames, page, 1, 8, name);
  }
});

test('late joiner gets the complete state: the snapshot and all 100 events', async () => {
  const s = await P.session(tenant.id);
  const v = await visitorOn(s);
  const page = new VisitorPage();
  page.attach(v);
  page.snapshot(payloadFor(1, 5000, 'snap'));
  for (let k = 0; k < 100; k++) page.event(payloadFor(page.nextSeq, 200));
  await page.acked(101);

  const a = await agentOn(s, {}, { id: 'agent-late', name: 'Bob' });
  assert.equal(a.hello.session_id, s.id, 'hello.session_id');
  assert.equal(a.hello.visitor, 'connected', 'hello.visitor');
  assert.deepEqual(a.hello.permissions, { remote_control: 'ask' }, 'hello.permissions');
  assert.equal(a.hello.remote_control, 'none', 'hello.remote_control of a new agent');
  await a.waitForSeq(101);
  await sleep(100);
  const view = agentView(a.items, 'late agent');
  assertJoin(a, view, 1);
  assertFramesEqual(view.frames, page, 1, 101, 'late agent');

  const joined = await v.nextJson('agent_joined');
  assert.deepEqual(joined.agent, { id: 'agent-late', name: 'Bob' }, 'agent_joined.agent');
});

test('agent resume gets exactly the missing frames; a resume older than the snapshot gets reset and the whole page', async () => {
  const s = await P.session(tenant.id);
  const v = await visitorOn(s);
  const page = new VisitorPage();
  page.attach(v);
  page.snapshot(payloadFor(1, 2000, 'snap'));
  for (let k = 0; k < 49; k++) page.event(payloadFor(page.nextSeq, 100));
  await page.acked(50);

  const a1 = await agentOn(s);
  await a1.waitForSeq(50);
  await sleep(50);
  assertFramesEqual(agentView(a1.items, 'a1').frames, page, 1, 50, 'a1');
  await a1.close();

  for (let k = 0; k < 30; k++) page.event(payloadFor(page.nextSeq, 100));
  await page.acked(80);

  const a2 = track(await connectAgent(srv.relayUrl, a1.token, { resume: 50 }));
  assert.equal(a2.hello.resume, 'continue', `resume=50: ${JSON.stringify(a2.hello)}`);
  assert.equal(a2.hello.from, 51, `resume=50: hello.from: ${JSON.stringify(a2.hello)}`);
  await a2.waitForSeq(80);
  page.event(payloadFor(page.nextSeq, 100)); // 81, live
  await a2.waitForSeq(81);
  await sleep(100);
  let view = agentView(a2.items, 'a2');
  assert.deepEqual(view.resets, [], 'a resume the history covers needs no reset');
  assertFramesEqual(view.frames, page, 51, 81, 'a2 (resume=50)');
  await a2.close();

  // Up to date: nothing follows.
  const a3 = track(await connectAgent(srv.relayUrl, a1.token, { resume: 81 }));
  assert.equal(a3.hello.resume, 'continue', `resume=81: ${JSON.stringify(a3.hello)}`);
  assert.equal(a3.hello.from, 82, `resume=81: ${JSON.stringify(a3.hello)}`);
  await sleep(200);
  assert.equal(a3.frames.length, 0, `nothing is missing at resume=81: ${a3.describe()}`);
  await a3.close();

  // A new snapshot (82): resume=50 is older than it.
  page.snapshot(payloadFor(page.nextSeq, 3000, 'snap2'));
  for (let k = 0; k < 8; k++) page.event(payloadFor(page.nextSeq, 100));
  await page.acked(90);
  const a4 = track(await connectAgent(srv.relayUrl, a1.token, { resume: 50 }));
  assert.equal(a4.hello.resume, 'reset', `resume=50 after snapshot 82: ${JSON.stringify(a4.hello)}`);
  const reset = await a4.nextJson('reset');
  assert.deepEqual(reset, { type: 'reset', seq: 82, reason: 'resume_too_old' }, 'the reset');
  await a4.waitForSeq(90);
  await sleep(100);
  view = agentView(a4.items, 'a4');
  assert.equal(view.resets.length, 1);
  assertFramesEqual(view.frames, page, 82, 90, 'a4 (resume=50, reset)');
});

test('visitor resume after a dropped connection loses nothing: every seq reaches the agent once, in order', async (t) => {
  const s = await P.session(tenant.id);
  const v1 = await visitorOn(s);
  const page = new VisitorPage();
  page.attach(v1);
  page.snapshot(payloadFor(1, 2000, 'snap'));
  await page.acked(1);
  const a = await agentOn(s);
  await a.waitForSeq(1);

  // 1,000 events of 4 KiB, then the TCP connection is dropped at once: whatever ws had not yet
  // handed to the kernel, and whatever the relay had not read, is lost.
  for (let k = 0; k < 1000; k++) page.event(payloadFor(page.nextSeq, 4096));
  const lastSent = page.lastSeq;
  v1.terminate();
  await v1.closed;

  const v2 = await visitorOn(s, { resume: lastSent });
  const { have, next_seq: nextSeq } = v2.hello;
  t.diagnostic(`sent up to ${lastSent}, the relay had ${have}`);
  assert.ok(Number.isInteger(have) && have >= 1 && have <= lastSent, `hello.have ${have} must be in 1..${lastSent}`);
  // seq grows by exactly 1 per frame for the whole session: the next one is after both what the
  // relay has and what this visitor last sent (a new page would start there with a snapshot).
  assert.equal(nextSeq, Math.max(have, lastSent) + 1, 'hello.next_seq');
  assert.ok(page.outbox.has(have + 1) || have === lastSent, 'the outbox reaches back to have + 1');
  page.attach(v2); // resends from have + 1
  for (let k = 0; k < 100; k++) page.event(payloadFor(page.nextSeq, 300));
  const last = page.lastSeq;
  await page.acked(last, 20_000);
  await a.waitForSeq(last, 20_000);
  await sleep(150);
  const view = agentView(a.items, 'agent');
  assertJoin(a, view, 1);
  assert.equal(view.resets.length, a.hello.resume === 'reset' ? 1 : 0, `no reset besides the join: ${JSON.stringify(view.resets)}`);
  assertFramesEqual(view.frames, page, 1, last, 'agent');
});

test('gap and duplicate handling: resend{from} on a gap, duplicates dropped, a snapshot after a gap resets agents', async () => {
  const s = await P.session(tenant.id);
  const v = await visitorOn(s);
  const sent = new Map();
  const send = (seq, kind = KIND_EVENT, tag = 'e', keep = true) => {
    const buf = encodeFrame({ kind, seq, payload: payloadFor(seq, 120, tag) });
    if (keep) sent.set(seq, buf);
    v.sendBinary(buf);
  };
  const page = { sent: (seq) => sent.get(seq) }; // for assertFramesEqual
  const ackAtLeast = (seq) => v.nextJson('ack', 5000, (m) => m.seq >= seq);

  send(1, KIND_SNAPSHOT, 'snap');
  await ackAtLeast(1);
  const a = await agentOn(s);
  await a.waitForSeq(1);
  send(2);
  send(3);
  await ackAtLeast(3);

  send(5, KIND_EVENT, 'e', false); // 4 is missing
  const resend = await v.nextJson('resend');
  assert.deepEqual(resend, { type: 'resend', from: 4 }, 'a gap after 3 asks for 4 on');
  await sleep(100);
  assert.equal(a.lastSeq, 3, `an event after a gap is dropped: ${a.describe()}`);
  send(4);
  send(5);
  await ackAtLeast(5);

  // Duplicates, one of them with other bytes: all dropped.
  send(2, KIND_EVENT, 'e', false);
  v.sendFrame({ kind: KIND_EVENT, seq: 3, payload: payloadFor(3, 120, 'DUPLICATE') });
  send(5, KIND_EVENT, 'e', false);
  send(6);
  const ack6 = await ackAtLeast(6);
  assert.equal(ack6.seq, 6, 'the relay holds up to 6, no more');

  // A snapshot after a gap (7..9 never sent) is accepted; agents are told reset(gap) first.
  send(10, KIND_SNAPSHOT, 'snap10');
  const ack10 = await ackAtLeast(10);
  assert.equal(ack10.seq, 10, 'a snapshot after a gap is stored');
  send(11);
  send(12);
  await ackAtLeast(12);
  await a.waitForSeq(12);
  await sleep(150);

  const view = agentView(a.items, 'agent');
  const gapResets = view.resets.filter((r) => r.reason === 'gap');
  assert.deepEqual(gapResets, [{ type: 'reset', seq: 10, reason: 'gap' }], `reset(gap) before snapshot 10: ${a.describe()}`);
  const seqs = view.frames.map((f) => f.seq);
  assert.deepEqual(seqs, [1, 2, 3, 4, 5, 6, 10, 11, 12], 'each seq once, in order');
  for (const f of view.frames) assert.ok(f.raw.equals(page.sent(f.seq)), `frame ${f.seq} is the first one accepted, byte for byte`);
  const resends = v.jsonOf('resend');
  assert.ok(resends.every((m) => m.from === 4), `every resend asked for 4: ${JSON.stringify(resends)}`);
});

test('a second visitor connection fences the first: close 4002, and what the first sends afterwards never reaches agents', async () => {
  const s = await P.session(tenant.id);
  const v1 = await visitorOn(s);
  const page = new VisitorPage();
  page.attach(v1);
  page.snapshot(payloadFor(1, 1000, 'snap'));
  for (let k = 0; k < 9; k++) page.event(payloadFor(page.nextSeq, 100));
  await page.acked(10);
  const a = await agentOn(s);
  await a.waitForSeq(10);
  page.detach();

  // The moment the second connection is open, the first sends 11..25 (marked OLD).
  const r = await handshake(srv.relayUrl, s.visitor_token, { resume: 10, label: 'visitor 2' });
  assert.ok(r.client, `the second visitor connection is accepted: ${JSON.stringify(r.rejected)}`);
  for (let seq = 11; seq <= 25; seq++) v1.sendFrame({ kind: KIND_EVENT, seq, payload: payloadFor(seq, 100, 'OLD') });
  const v2 = track(r.client);
  const hello = await v2.nextJson('hello');
  assert.equal(hello.have, 10, `the newer connection continues after 10: ${JSON.stringify(hello)}`);
  assert.equal(hello.next_seq, 11);

  const closed = await v1.nextClose(3000);

  v2.hello = hello;
  page.attach(v2);
  for (let k = 0; k < 10; k++) page.event(payloadFor(page.nextSeq, 100, 'NEW')); // 11..20
  await page.acked(20);
  await a.waitForSeq(20);
  await sleep(300);
  const view = agentView(a.items, 'agent');
  assertFramesEqual(view.frames, page, 1, 20, 'agent (no OLD frame from the fenced connection)');
  assert.equal(closed.code, 4002, `the older visitor connection is closed with 4002, got ${closed.code} ${closed.reason}`);
});
