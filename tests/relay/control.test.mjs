// Agents' pointer and control messages (docs/protocol.md "Control messages", "Permissions
// enforced by the relay"): what is forwarded to the visitor, what is refused and why.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { connectVisitor, connectAgent, VisitorPage, payloadFor, sleep } from './lib/relay.mjs';
import { platform, defaultServer } from './lib/platform.mjs';
import { assertCleanExit } from './lib/server.mjs';

let srv, P, tenant;
const open = new Set();
const track = (c) => { open.add(c); return c; };

before(async () => {
  srv = await defaultServer();
  P = platform(srv);
  tenant = await P.tenant({ permissions: { remote_control: 'ask' } });
});

after(async () => {
  for (const c of open) c.terminate();
  if (srv && srv.own) assertCleanExit(await srv.stop());
});

async function liveSession(body = {}) {
  const s = await P.session(tenant.id, body);
  const v = track(await connectVisitor(srv.relayUrl, s.visitor_token));
  const page = new VisitorPage();
  page.attach(v);
  page.snapshot(payloadFor(1, 500, 'snap'));
  await page.acked(1);
  return { s, v, page };
}

async function agentOn(s, agent, permissions) {
  const t = await P.agentToken(tenant.id, s.id, { ...agent, permissions });
  return track(await connectAgent(srv.relayUrl, t.token));
}

/** Sends an action and expects the visitor to get it as {type:"control", agent, action}. */
async function forwarded(a, v, action, agent) {
  a.send(action);
  const m = await v.nextJson('control', 3000, (x) => x.action && x.action.type === action.type);
  assert.deepEqual(m, { type: 'control', agent, action }, `${action.type} is forwarded as sent`);
}

/** Sends an action and expects refused{ref, action, reason}; the visitor gets nothing. */
async function refused(a, v, action, reason) {
  a.send(action);
  const m = await a.nextJson('refused', 3000, (x) => x.ref === action.ref);
  assert.deepEqual(m, { type: 'refused', ref: action.ref, action: action.type, reason }, `${action.type} refused`);
}

/** The visitor got exactly these control actions (types, in order): nothing refused leaked. */
function assertControls(v, types) {
  assert.deepEqual(v.jsonOf('control').map((m) => m.action && m.action.type), types,
    'the visitor gets the forwarded actions and nothing that was refused');
}

test('control is refused without consent, forwarded after consent granted, refused again after revoke; pointer always forwarded', async () => {
  const { s, v } = await liveSession();
  const bob = { id: 'agent-7', name: 'Bob' };
  const a = await agentOn(s, bob);
  assert.equal(a.hello.remote_control, 'none', 'no consent yet');
  assert.deepEqual(a.hello.permissions, { remote_control: 'ask' });
  const joined = await v.nextJson('agent_joined');
  assert.deepEqual(joined.agent, bob);

  await refused(a, v, { type: 'click', x: 120, y: 340, ref: 'c-1' }, 'no_consent');
  await refused(a, v, { type: 'scroll', x: 0, y: 1200, ref: 'c-2' }, 'no_consent');
  await refused(a, v, { type: 'key', key: 'a', ref: 'c-3' }, 'no_consent');
  await forwarded(a, v, { type: 'pointer', x: 120, y: 340 }, bob);
  await forwarded(a, v, { type: 'highlight', x: 10, y: 20, w: 200, h: 40 }, bob);
  await forwarded(a, v, { type: 'request_control' }, bob);

  v.send({ type: 'consent', agent_id: 'agent-7', remote_control: 'granted' });
  assert.deepEqual(await a.nextJson('consent'), { type: 'consent', remote_control: 'granted' });
  await forwarded(a, v, { type: 'click', x: 5, y: 6 }, bob);
  await forwarded(a, v, { type: 'scroll', x: 0, y: 600 }, bob);
  await forwarded(a, v, { type: 'key', key: 'Enter' }, bob);
  await forwarded(a, v, { type: 'pointer', x: 1, y: 2 }, bob);

  v.send({ type: 'consent', agent_id: 'agent-7', remote_control: 'revoked' });
  assert.deepEqual(await a.nextJson('consent'), { type: 'consent', remote_control: 'revoked' });
  await refused(a, v, { type: 'click', x: 7, y: 8, ref: 'c-7' }, 'no_consent');
  await forwarded(a, v, { type: 'pointer', x: 3, y: 4 }, bob);

  await sleep(150);
  assertControls(v, ['pointer', 'highlight', 'request_control', 'click', 'scroll', 'key', 'pointer', 'pointer']);
  const refusedRefs = a.jsonOf('refused').map((m) => m.ref);
  assert.deepEqual(refusedRefs, ['c-1', 'c-2', 'c-3', 'c-7'], 'only those were refused');
});

test('consent is per agent: granting one agent does not let another click; consent without agent_id covers all', async () => {
  const { s, v } = await liveSession();
  const ann = { id: 'agent-ann', name: 'Ann' };
  const cid = { id: 'agent-cid', name: 'Cid' };
  const a = await agentOn(s, ann);
  const c = await agentOn(s, cid);
  v.send({ type: 'consent', agent_id: 'agent-ann', remote_control: 'granted' });
  assert.deepEqual(await a.nextJson('consent'), { type: 'consent', remote_control: 'granted' });
  await forwarded(a, v, { type: 'click', x: 1, y: 1 }, ann);
  await refused(c, v, { type: 'click', x: 2, y: 2, ref: 'c-1' }, 'no_consent');

  v.send({ type: 'consent', remote_control: 'granted' });
  assert.deepEqual(await c.nextJson('consent'), { type: 'consent', remote_control: 'granted' });
  await forwarded(c, v, { type: 'click', x: 3, y: 3 }, cid);

  v.send({ type: 'consent', agent_id: 'agent-cid', remote_control: 'denied' });
  assert.deepEqual(await c.nextJson('consent'), { type: 'consent', remote_control: 'denied' });
  await refused(c, v, { type: 'key', key: 'x', ref: 'c-3' }, 'no_consent');
  await forwarded(a, v, { type: 'key', key: 'y' }, ann);
  await sleep(100);
  assertControls(v, ['click', 'click', 'key']);
});

test('remote_control off (session, or the agent token) refuses request_control and clicks with remote_control_off; pointer still forwarded', async () => {
  // The session does not allow remote control.
  const off = await liveSession({ permissions: { remote_control: 'off' } });
  const bob = { id: 'agent-off', name: 'Bob' };
  const a = await agentOn(off.s, bob);
  assert.deepEqual(a.hello.permissions, { remote_control: 'off' }, 'hello.permissions of an off session');
  await refused(a, off.v, { type: 'request_control', ref: 'r-1' }, 'remote_control_off');
  await refused(a, off.v, { type: 'click', x: 1, y: 1, ref: 'c-1' }, 'remote_control_off');
  // Even a consent sent by the visitor does not enable it.
  off.v.send({ type: 'consent', remote_control: 'granted' });
  await sleep(100);
  await refused(a, off.v, { type: 'click', x: 1, y: 1, ref: 'c-2' }, 'remote_control_off');
  await forwarded(a, off.v, { type: 'pointer', x: 9, y: 9 }, bob);
  await sleep(100);
  assertControls(off.v, ['pointer']);

  // The session asks, but this agent's token is "off".
  const ask = await liveSession();
  const eve = { id: 'agent-eve', name: 'Eve' };
  const e = await agentOn(ask.s, eve, { remote_control: 'off' });
  await refused(e, ask.v, { type: 'request_control', ref: 'r-2' }, 'remote_control_off');
  ask.v.send({ type: 'consent', remote_control: 'granted' });
  await sleep(100);
  await refused(e, ask.v, { type: 'scroll', x: 0, y: 1, ref: 's-1' }, 'remote_control_off');
  await forwarded(e, ask.v, { type: 'highlight', x: 1, y: 2, w: 3, h: 4 }, eve);
  await sleep(100);
  assertControls(ask.v, ['highlight']);
});

test('unknown or malformed actions are refused as invalid; pointer without the visitor is refused as visitor_absent', async () => {
  const { s, v } = await liveSession();
  const a = await agentOn(s, { id: 'agent-x', name: 'Xan' });
  a.send({ type: 'dance', ref: 'd-1' });
  const inv = await a.nextJson('refused', 3000, (m) => m.ref === 'd-1');
  assert.equal(inv.reason, 'invalid', `unknown type: ${JSON.stringify(inv)}`);
  a.send({ ref: 'd-2' });
  const inv2 = await a.nextJson('refused', 3000, (m) => m.ref === 'd-2');
  assert.equal(inv2.reason, 'invalid', `no type: ${JSON.stringify(inv2)}`);
  assert.ok(a.open, 'a refused action does not close the connection');

  await v.close();
  const gone = await a.nextJson('visitor', 3000);
  assert.deepEqual(gone, { type: 'visitor', state: 'disconnected' });
  await refused(a, v, { type: 'pointer', x: 1, y: 1, ref: 'p-9' }, 'visitor_absent');
  await refused(a, v, { type: 'highlight', x: 1, y: 1, w: 1, h: 1, ref: 'h-9' }, 'visitor_absent');
});

test('a forwarded action is the agent\'s message as sent (its ref included)', async () => {
  const { s, v } = await liveSession();
  const bob = { id: 'agent-ref', name: 'Bob' };
  const a = await agentOn(s, bob);
  await forwarded(a, v, { type: 'pointer', x: 120, y: 340, ref: 'c-16' }, bob);
});

test('consent and later connections: a decision for an absent agent is ignored, a decision for all covers later agents, a reconnecting agent asks again unless another of its connections is open', async () => {
  const { s, v } = await liveSession();
  // A decision naming an agent that is not connected is ignored.
  v.send({ type: 'consent', agent_id: 'agent-later', remote_control: 'granted' });
  await sleep(100);
  const liz = { id: 'agent-later', name: 'Liz' };
  const t1 = await P.agentToken(tenant.id, s.id, liz);
  const a1 = track(await connectAgent(srv.relayUrl, t1.token));
  assert.equal(a1.hello.remote_control, 'none', 'a decision for an absent agent has no effect');
  await refused(a1, v, { type: 'click', x: 1, y: 1, ref: 'l-1' }, 'no_consent');

  // Granted to Liz, with two connections open (two tabs): one closes, a third one still has it.
  const a2 = track(await connectAgent(srv.relayUrl, t1.token));
  v.send({ type: 'consent', agent_id: 'agent-later', remote_control: 'granted' });
  assert.deepEqual(await a1.nextJson('consent'), { type: 'consent', remote_control: 'granted' });
  assert.deepEqual(await a2.nextJson('consent'), { type: 'consent', remote_control: 'granted' });
  await a1.close();
  await sleep(100);
  const a3 = track(await connectAgent(srv.relayUrl, t1.token, { resume: 1 }));
  assert.equal(a3.hello.remote_control, 'granted', 'another connection of the agent is open: its consent holds');
  await forwarded(a3, v, { type: 'click', x: 2, y: 2 }, liz);

  // Every connection gone: the agent asks again.
  await a2.close();
  await a3.close();
  await sleep(100);
  const a4 = track(await connectAgent(srv.relayUrl, t1.token, { resume: 1 }));
  assert.equal(a4.hello.remote_control, 'none', 'an agent that reconnects (no other connection open) asks again');
  await refused(a4, v, { type: 'click', x: 3, y: 3, ref: 'l-2' }, 'no_consent');

  // A decision for all applies to agents that join afterwards too.
  v.send({ type: 'consent', remote_control: 'granted' });
  assert.deepEqual(await a4.nextJson('consent'), { type: 'consent', remote_control: 'granted' });
  const oz = { id: 'agent-oz', name: 'Oz' };
  const b = await agentOn(s, oz);
  assert.equal(b.hello.remote_control, 'granted', 'consent for every agent of the session');
  await forwarded(b, v, { type: 'scroll', x: 0, y: 5 }, oz);
});

test('the visitor\'s hello lists the connected agents; agent_joined and agent_left follow them', async () => {
  const { s, v } = await liveSession();
  const ann = { id: 'agent-ann', name: 'Ann' };
  const a = await agentOn(s, ann);
  assert.deepEqual((await v.nextJson('agent_joined')).agent, ann);
  const v2 = track(await connectVisitor(srv.relayUrl, s.visitor_token, { resume: 1 }));
  assert.deepEqual(v2.hello.agents, [ann], 'hello.agents of a reconnecting visitor');
  await a.close();
  assert.deepEqual((await v2.nextJson('agent_left')).agent, ann);
});
