// The stylesheet fallback's messages (docs/protocol.md "asset_request", "asset_ready",
// "asset_unavailable"; docs/proxy.md "Fallback"): an agent's asset_request reaches the visitor as
// a control action, the visitor's answers reach every agent, and malformed ones are refused.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { connectVisitor, connectAgent, VisitorPage, payloadFor } from './lib/relay.mjs';
import { platform, defaultServer } from './lib/platform.mjs';
import { assertCleanExit } from './lib/server.mjs';

let srv, P, tenant;
const open = new Set();
const track = (c) => { open.add(c); return c; };

before(async () => {
  srv = await defaultServer();
  P = platform(srv);
  tenant = await P.tenant({ permissions: { remote_control: 'off' } });
});

after(async () => {
  for (const c of open) c.terminate();
  if (srv && srv.own) assertCleanExit(await srv.stop());
});

async function liveSession() {
  const s = await P.session(tenant.id, {});
  const v = track(await connectVisitor(srv.relayUrl, s.visitor_token));
  const page = new VisitorPage();
  page.attach(v);
  page.snapshot(payloadFor(1, 500, 'snap'));
  await page.acked(1);
  return { s, v };
}

async function agentOn(s, agent) {
  const t = await P.agentToken(tenant.id, s.id, agent);
  return track(await connectAgent(srv.relayUrl, t.token));
}

const CSS = 'https://cdn.example.com/site.css?v=3';

test('asset_request reaches the visitor as a control action without remote control; asset_ready and asset_unavailable reach every agent', async () => {
  const { s, v } = await liveSession();
  const bob = { id: 'agent-7', name: 'Bob' };
  const a = await agentOn(s, bob);
  const b = await agentOn(s, { id: 'agent-8', name: 'Eve' });
  assert.equal(a.hello.permissions.remote_control, 'off');

  a.send({ type: 'asset_request', url: CSS, ref: 'r1', extra: 'dropped' });
  const m = await v.nextJson('control', 3000, (x) => x.action && x.action.type === 'asset_request');
  assert.deepEqual(m, { type: 'control', agent: bob, action: { type: 'asset_request', url: CSS, ref: 'r1' } });

  v.send({ type: 'asset_ready', url: CSS, text: 'not forwarded' });
  for (const ag of [a, b]) assert.deepEqual(await ag.nextJson('asset_ready'), { type: 'asset_ready', url: CSS });
  v.send({ type: 'asset_unavailable', url: CSS, reason: 'too_large' });
  for (const ag of [a, b]) {
    assert.deepEqual(await ag.nextJson('asset_unavailable'), { type: 'asset_unavailable', url: CSS, reason: 'too_large' });
  }
});

test('malformed asset messages are refused with invalid and reach nobody', async () => {
  const { s, v } = await liveSession();
  const a = await agentOn(s, { id: 'agent-9', name: null });
  const badUrls = ['data:text/css,a{}', '/relative.css', 'https://', 'https://a b/c.css', 'https://x/' + 'a'.repeat(2040), 'file:///etc/passwd'];
  for (const [i, url] of badUrls.entries()) {
    a.send({ type: 'asset_request', url, ref: `b${i}` });
    const r = await a.nextJson('refused', 3000, (x) => x.ref === `b${i}`);
    assert.deepEqual(r, { type: 'refused', ref: `b${i}`, action: 'asset_request', reason: 'invalid' }, url);
  }
  const bad = [
    { type: 'asset_ready' },
    { type: 'asset_ready', url: 'javascript:alert(1)' },
    { type: 'asset_unavailable', url: CSS },
    { type: 'asset_unavailable', url: CSS, reason: 'x'.repeat(33) },
    { type: 'asset_unavailable', url: CSS, reason: 'Not A Token' },
  ];
  for (const msg of bad) {
    v.send({ ...msg, ref: 'v1' });
    const r = await v.nextJson('refused', 3000);
    assert.deepEqual(r, { type: 'refused', ref: 'v1', action: msg.type, reason: 'invalid' }, JSON.stringify(msg));
  }
  // A well-formed message after them goes through: the bad ones did not reach the agent before it.
  v.send({ type: 'asset_ready', url: CSS });
  await a.nextJson('asset_ready');
  assert.deepEqual(a.jsonOf('asset_ready').length + a.jsonOf('asset_unavailable').length, 1, 'only the valid answer reached the agent');
  assert.equal(v.jsonOf('control').length, 0, 'no refused request reached the visitor');
});

test('a visitor flooding asset answers is refused rate_limited', async () => {
  const { s, v } = await liveSession();
  const a = await agentOn(s, { id: 'agent-10', name: null });
  for (let i = 0; i < 150; i++) v.send({ type: 'asset_ready', url: `${CSS}&n=${i}` });
  const r = await v.nextJson('refused', 5000);
  assert.equal(r.reason, 'rate_limited');
  assert.equal(r.action, 'asset_ready');
  v.send({ type: 'consent', remote_control: 'denied' }); // a marker: everything before it was handled
  await a.nextJson('consent');
  const got = a.jsonOf('asset_ready').length;
  assert.ok(got >= 100 && got < 150, `the burst passed, the rest did not (${got})`);
});
