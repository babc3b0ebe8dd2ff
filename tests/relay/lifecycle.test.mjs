// Session lifecycle (docs/protocol.md "Lifecycle"): what the relay stores in PostgreSQL, ending
// a session through the REST API or by suspending its tenant, idle expiry.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import {
  connectVisitor, connectAgent, rejection, expectRejection, VisitorPage, payloadFor, sleep,
} from './lib/relay.mjs';
import { platform, defaultServer, sql, lit, eventually } from './lib/platform.mjs';
import { startServer, assertCleanExit } from './lib/server.mjs';

let srv, P, tenant, idleSrv;
const open = new Set();
const track = (c) => { open.add(c); return c; };

before(async () => {
  [srv, idleSrv] = await Promise.all([
    defaultServer(),
    startServer({ name: 'relay-idle', flags: { 'relay-idle-seconds': 1 } }),
  ]);
  P = platform(srv);
  tenant = await P.tenant();
});

after(async () => {
  for (const c of open) c.terminate();
  const stops = [];
  if (idleSrv) stops.push(idleSrv.stop());
  if (srv && srv.own) stops.push(srv.stop());
  for (const r of await Promise.all(stops)) assertCleanExit(r);
});

async function agentOn(p, tenantId, s, agent = {}) {
  const t = await p.agentToken(tenantId, s.id, agent);
  const a = track(await connectAgent(srv.relayUrl, t.token));
  a.token = t.token;
  return a;
}

test('lifecycle is stored: visitor connected -> active with started_at; agents joined and left -> participants', async () => {
  const s = await P.session(tenant.id, { visitor: { external_id: 'ext-life', name: 'Ann' } });
  assert.equal(s.status, 'pending');
  assert.equal(s.started_at, null);

  const before = Date.now();
  const v = track(await connectVisitor(srv.relayUrl, s.visitor_token));
  const page = new VisitorPage();
  page.attach(v);
  page.snapshot(payloadFor(1, 100));
  const got = await eventually(async () => {
    const g = await P.getSession(tenant.id, s.id);
    return g.status === 'active' && g.started_at ? g : null;
  }, 3000, 'session active with started_at');
  const started = Date.parse(got.started_at);
  assert.ok(started >= Date.parse(got.created_at), 'started_at >= created_at');
  assert.ok(started >= before - 2000 && started <= Date.now() + 2000, `started_at ${got.started_at} is when the visitor connected`);
  assert.equal(got.ended_at, null);

  const a = await agentOn(P, tenant.id, s, { id: 'agent-life', name: 'Bob' });
  const rows = await eventually(async () => {
    const r = await sql(`SELECT role, coalesce(external_id, ''), coalesce(name, ''), tenant_id, left_at IS NULL
                           FROM participants WHERE session_id = ${lit(s.id)} ORDER BY joined_at, role`);
    return r.some((x) => x[0] === 'agent') && r.some((x) => x[0] === 'visitor') ? r : null;
  }, 3000, 'participants rows for the visitor and the agent');
  const agentRows = rows.filter((r) => r[0] === 'agent');
  const visitorRows = rows.filter((r) => r[0] === 'visitor');
  assert.equal(agentRows.length, 1, `one agent row: ${JSON.stringify(rows)}`);
  assert.equal(visitorRows.length, 1, `one visitor row: ${JSON.stringify(rows)}`);
  assert.deepEqual(agentRows[0], ['agent', 'agent-life', 'Bob', tenant.id, 't'], 'the agent row');
  assert.equal(visitorRows[0][3], tenant.id, 'the visitor row names the tenant');

  await a.close();
  await eventually(async () => {
    const r = await sql(`SELECT count(*) FROM participants WHERE session_id = ${lit(s.id)} AND role = 'agent' AND left_at IS NOT NULL`);
    return r[0][0] === '1';
  }, 3000, 'the agent row gets left_at');

  // Control requested, granted, denied and revoked are session events (migrations/002_relay.sql),
  // one row each, in order, naming the agent.
  const b = await agentOn(P, tenant.id, s, { id: 'agent-ctl', name: 'Cid' });
  b.send({ type: 'request_control' });
  await v.nextJson('control', 3000, (m) => m.action.type === 'request_control');
  for (const answer of ['granted', 'revoked', 'denied']) {
    v.send({ type: 'consent', agent_id: 'agent-ctl', remote_control: answer });
    await b.nextJson('consent', 3000, (m) => m.remote_control === answer);
  }
  const want = [['control_requested', 'agent-ctl'], ['control_granted', 'agent-ctl'],
    ['control_revoked', 'agent-ctl'], ['control_denied', 'agent-ctl']];
  const events = await eventually(async () => {
    const r = await sql(`SELECT type, coalesce(agent_id, ''), tenant_id FROM session_events
                           WHERE session_id = ${lit(s.id)} ORDER BY created_at, id`);
    return r.length >= want.length ? r : null;
  }, 3000, 'four rows in session_events');
  assert.deepEqual(events, want.map((w) => [...w, tenant.id]), 'session_events rows');
});

test('ending a session through REST closes the visitor and agents with 4001 within 1 s', async () => {
  const s = await P.session(tenant.id);
  const v = track(await connectVisitor(srv.relayUrl, s.visitor_token));
  const page = new VisitorPage();
  page.attach(v);
  page.snapshot(payloadFor(1, 100));
  await page.acked(1);
  const agents = [await agentOn(P, tenant.id, s), await agentOn(P, tenant.id, s)];
  await Promise.all(agents.map((a) => a.waitForSeq(1)));

  const t0 = Date.now();
  const ended = await P.endSession(tenant.id, s.id);
  assert.equal(ended.status, 'ended');
  const closes = await Promise.all([v, ...agents].map((c) => c.nextClose(3000)));
  for (const [k, c] of closes.entries()) {
    assert.equal(c.code, 4001, `connection ${k} (${k ? 'agent' : 'visitor'}) close code`);
    assert.ok(c.at - t0 <= 1000, `connection ${k} closed ${c.at - t0} ms after the REST call (limit 1000)`);
  }
  for (const a of agents) {
    const m = a.jsonOf('session_ended');
    assert.deepEqual(m, [{ type: 'session_ended', reason: 'ended_by_api' }], `agents are told why: ${a.describe()}`);
  }
  const rv = await rejection(srv.relayUrl, s.visitor_token);
  expectRejection(rv, 404, 'session_ended', 'visitor token of the ended session');
  const ra = await rejection(srv.relayUrl, agents[0].token, { resume: 1 });
  expectRejection(ra, 404, 'session_ended', 'agent token of the ended session, with resume');
});

test('suspending the tenant closes its sessions\' connections with 4001 within 1 s', async () => {
  const t2 = await P.tenant();
  const s1 = await P.session(t2.id);
  const s2 = await P.session(t2.id);
  const v1 = track(await connectVisitor(srv.relayUrl, s1.visitor_token));
  const v2 = track(await connectVisitor(srv.relayUrl, s2.visitor_token));
  const a1 = await agentOn(P, t2.id, s1);
  // A session of another tenant stays up.
  const other = await P.session(tenant.id);
  const vo = track(await connectVisitor(srv.relayUrl, other.visitor_token));

  const t0 = Date.now();
  await P.suspendTenant(t2.id);
  const closes = await Promise.all([v1, v2, a1].map((c) => c.nextClose(3000)));
  for (const [k, c] of closes.entries()) {
    assert.equal(c.code, 4001, `connection ${k} close code`);
    assert.ok(c.at - t0 <= 1000, `connection ${k} closed ${c.at - t0} ms after the suspension (limit 1000)`);
  }
  const se = a1.jsonOf('session_ended');
  assert.equal(se.length, 1, `the agent is told the session ended: ${a1.describe()}`);
  assert.equal(typeof se[0].reason, 'string');
  expectRejection(await rejection(srv.relayUrl, s2.visitor_token), 404, 'session_ended', 'suspended tenant');
  await sleep(200);
  assert.ok(vo.open, 'another tenant\'s session is not touched');
});

test('idle expiry: a session with nobody connected for --relay-idle-seconds ends with end_reason idle', async () => {
  const Pi = platform(idleSrv);
  const ti = await Pi.tenant();
  const idle = await Pi.session(ti.id);
  const busy = await Pi.session(ti.id);
  const vi = track(await connectVisitor(idleSrv.relayUrl, idle.visitor_token));
  const vb = track(await connectVisitor(idleSrv.relayUrl, busy.visitor_token));
  await eventually(async () => (await Pi.getSession(ti.id, idle.id)).status === 'active', 3000, 'active');
  await vi.close();
  const ended = await eventually(async () => {
    const g = await Pi.getSession(ti.id, idle.id);
    return g.status === 'ended' ? g : null;
  }, 6000, 'the idle session ended', 100);
  assert.equal(ended.end_reason, 'idle');
  const stillLive = await Pi.getSession(ti.id, busy.id);
  assert.equal(stillLive.status, 'active', 'a session with its visitor connected is not idle');
  assert.ok(vb.open, 'and its visitor stays connected');
  expectRejection(await rejection(idleSrv.relayUrl, idle.visitor_token, { resume: 0 }), 404, 'session_ended', 'idle-ended session');
});
