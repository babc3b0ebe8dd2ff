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

function assertNoControl(v, ref) {
  const leaked = v.jsonOf('control').filter((m) => m.action && m.action.ref === ref);
  assert.deepEqual(leaked, [], `the refused action ${ref} must not reach the visitor`);
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
  await forwarded(a, v, { type: 'pointer', x: 120, y: 340, ref: 'p-1' }, bob);
  await forwarded(a, v, { type: 'highlight', x: 10, y: 20, w: 200, h: 40 }, bob);
  await forwarded(a, v, { type: 'request_control', ref: 'r-1' }, bob);

  v.send({ type: 'consent', agent_id: 'agent-7', remote_control: 'granted' });
  assert.deepEqual(await a.nextJson('consent'), { type: 'consent', remote_control: 'granted' });
  await forwarded(a, v, { type: 'click', x: 5, y: 6, ref: 'c-4' }, bob);
  await forwarded(a, v, { type: 'scroll', x: 0, y: 600, ref: 'c-5' }, bob);
  await forwarded(a, v, { type: 'key', key: 'Enter', ref: 'c-6' }, bob);
  await forwarded(a, v, { type: 'pointer', x: 1, y: 2 }, bob);

  v.send({ type: 'consent', agent_id: 'agent-7', remote_control: 'revoked' });
  assert.deepEqual(await a.nextJson('consent'), { type: 'consent', remote_control: 'revoked' });
  await refused(a, v, { type: 'click', x: 7, y: 8, ref: 'c-7' }, 'no_consent');
  await forwarded(a, v, { type: 'pointer', x: 3, y: 4, ref: 'p-2' }, bob);

  await sleep(150);
  for (const ref of ['c-1', 'c-2', 'c-3', 'c-7']) assertNoControl(v, ref);
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
  await forwarded(a, v, { type: 'click', x: 1, y: 1, ref: 'a-1' }, ann);
  await refused(c, v, { type: 'click', x: 2, y: 2, ref: 'c-1' }, 'no_consent');

  v.send({ type: 'consent', remote_control: 'granted' });
  assert.deepEqual(await c.nextJson('consent'), { type: 'consent', remote_control: 'granted' });
  await forwarded(c, v, { type: 'click', x: 3, y: 3, ref: 'c-2' }, cid);

  // A later agent sees its consent in hello.
  v.send({ type: 'consent', agent_id: 'agent-cid', remote_control: 'denied' });
  assert.deepEqual(await c.nextJson('consent'), { type: 'consent', remote_control: 'denied' });
  await refused(c, v, { type: 'key', key: 'x', ref: 'c-3' }, 'no_consent');
  await forwarded(a, v, { type: 'key', key: 'y', ref: 'a-2' }, ann);
  assertNoControl(v, 'c-1');
  assertNoControl(v, 'c-3');
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
  await forwarded(a, off.v, { type: 'pointer', x: 9, y: 9, ref: 'p-1' }, bob);
  assertNoControl(off.v, 'r-1');
  assertNoControl(off.v, 'c-1');
  assertNoControl(off.v, 'c-2');

  // The session asks, but this agent's token is "off".
  const ask = await liveSession();
  const eve = { id: 'agent-eve', name: 'Eve' };
  const e = await agentOn(ask.s, eve, { remote_control: 'off' });
  await refused(e, ask.v, { type: 'request_control', ref: 'r-2' }, 'remote_control_off');
  ask.v.send({ type: 'consent', remote_control: 'granted' });
  await sleep(100);
  await refused(e, ask.v, { type: 'scroll', x: 0, y: 1, ref: 's-1' }, 'remote_control_off');
  await forwarded(e, ask.v, { type: 'highlight', x: 1, y: 2, w: 3, h: 4 }, eve);
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
