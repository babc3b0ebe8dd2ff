// What the three nodes share besides a session's frames (docs/cluster.md): the tenant's
// concurrent-session limit counted in Redis (a refusal after the upgrade: close 4030 with
// {"code":"session_limit","retry_ms":N}; a resume is never refused by it), ending a session
// through REST closing its sockets on every node within a second, and a stylesheet uploaded on one
// node's proxy served by another's (docs/proxy.md "Fallback").

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import {
  connectVisitor, connectAgent, handshake, VisitorPage, payloadFor, parseJwt, signJwt,
} from '../relay/lib/relay.mjs';
import { api, expectStatus } from '../integration/lib/client.mjs';
import { origin, proxyUrl } from '../integration/lib/proxy_origin.mjs';
import { eventually } from '../relay/lib/platform.mjs';
import { startCluster } from './lib/cluster.mjs';

let C, P, O;
const open = new Set();
const track = (c) => { open.add(c); return c; };

before(async () => {
  C = await startCluster({
    n: 3, name: 'platform',
    // The proxy test's origin is on loopback.
    flags: { 'proxy-allow-private': '127.0.0.0/8' }, env: { COBROWSE_PROXY_ALLOW_PRIVATE: '' },
  });
  P = C.P;
  O = await origin({ routes: {} }); // every stylesheet 404s: the proxy cannot fetch it
});

after(async () => {
  for (const c of open) c.terminate();
  await O?.close();
  if (C) await C.stop();
});

const relay = (i) => C.nodes[i].relayUrl;

async function visitorWithPage(i, s) {
  const v = track(await connectVisitor(relay(i), s.visitor_token, { label: `visitor on node-${i}` }));
  const page = new VisitorPage();
  page.attach(v);
  page.snapshot(payloadFor(1, 200, 'snap'));
  await page.acked(1);
  return { v, page };
}

test('the tenant\'s concurrent sessions are counted across nodes: one over the limit is closed 4030 session_limit', async () => {
  // The REST API refuses to create a session over the limit, and the relay reads the limit from
  // the token (claim lim): so the tenant allows more in REST, and the visitor tokens are signed
  // again (the nodes' shared secret) with concurrent_sessions 3, as lim says for a tenant at 3.
  const tenant = await P.tenant();
  const s = await Promise.all([0, 1, 2, 3].map(() => P.session(tenant.id)));
  for (const x of s) {
    const j = parseJwt(x.visitor_token);
    x.visitor_token = signJwt(j.header, { ...j.payload, lim: { ...j.payload.lim, concurrent_sessions: 3 } }, C.nodes[0].jwtSecret);
  }
  // One live session on each node: 3, the limit, none of them over it on its own node.
  const live = [];
  for (let i = 0; i < 3; i++) live.push(await visitorWithPage(i, s[i]));

  // The fourth, on any node: upgraded (the node alone cannot tell), then refused by Redis.
  const r = await handshake(relay(0), s[3].visitor_token, { label: 'visitor over the limit' });
  assert.ok(r.client, `the refusal comes after the upgrade, not as HTTP: ${r.rejected && r.rejected.text}`);
  const c = track(r.client);
  const closed = await c.nextClose(5000);
  assert.equal(closed.code, 4030, `close code: ${c.describe()}`);
  const reason = JSON.parse(closed.reason);
  assert.equal(reason.code, 'session_limit', closed.reason);
  assert.ok(Number.isInteger(reason.retry_ms) && reason.retry_ms > 0, `retry_ms: ${closed.reason}`);
  assert.equal(c.frameCount + c.jsons.length, 0, `nothing is sent before the refusal: ${c.describe()}`);

  // A resume of a live session on another node is the priority lane: admitted.
  await live[0].v.terminate();
  live[0].page.detach();
  const back = track(await connectVisitor(relay(2), s[0].visitor_token, { resume: 1, label: 'resume on node-2' }));
  assert.equal(back.hello.have, 1, 'the resumed session continues');

  // Once a session ends, its place is free on every node.
  await P.endSession(tenant.id, s[1].id);
  await eventually(async () => {
    const x = await handshake(relay(1), s[3].visitor_token);
    if (!x.client) return false;
    track(x.client);
    const first = await x.client.next(() => true, 10_000, 'hello or close');
    if (first.t === 'json' && first.msg.type === 'hello') return true;
    return false;
  }, 20_000, 'the fourth session admitted once the second ended', 200);
});

test('ending a session through REST closes its sockets on every node within 1 s', async () => {
  const tenant = await P.tenant();
  const s = await P.session(tenant.id);
  const { v } = await visitorWithPage(0, s);
  const agents = [];
  for (const i of [1, 2]) {
    const tok = await P.agentToken(tenant.id, s.id);
    agents.push(track(await connectAgent(relay(i), tok.token, { label: `agent on node-${i}` })));
  }
  await Promise.all(agents.map((a) => a.waitFor((x) => x.hello, 5000, 'the hello')));
  const t0 = Date.now();
  // Through node 1's API: ending is a PostgreSQL notification every node listens to.
  const ended = expectStatus(await api('POST', `${C.nodes[1].baseUrl}/v1/sessions/${s.id}/end`,
    { token: C.nodes[0].adminToken, tenant: tenant.id }), 200, 'end session');
  assert.equal(ended.status, 'ended');
  const closes = await Promise.all([v, ...agents].map((c) => c.nextClose(3000)));
  for (const [k, c] of closes.entries()) {
    assert.equal(c.code, 4001, `connection ${k} (node-${k}) close code`);
    assert.ok(c.at - t0 <= 1000, `connection ${k} (node-${k}) closed ${c.at - t0} ms after the REST call (limit 1000)`);
  }
});

function get(url) {
  return new Promise((resolve, reject) => {
    http.get(url, { agent: false }, (res) => {
      const chunks = [];
      res.on('data', (c) => chunks.push(c));
      res.on('error', reject);
      res.on('end', () => resolve({ status: res.statusCode, text: Buffer.concat(chunks).toString('utf8') }));
    }).on('error', reject);
  });
}

test('a stylesheet uploaded on node A\'s proxy is served by node B\'s proxy', async () => {
  const tenant = await P.tenant({ allowed_origins: [O.origin] });
  const s = await P.session(tenant.id);
  const agent = await P.agentToken(tenant.id, s.id);
  const url = O.url('/site.css');
  const up = await api('POST', `${C.nodes[0].proxyUrl}/v1/token/session/stylesheets`, {
    token: s.visitor_token, body: { url, text: '.cluster-copy{color:green}' },
  });
  assert.equal(up.status, 204, JSON.stringify(up.body));
  // The agent's proxy base names node 0's proxy; the same cap on node 1's proxy listener.
  const ctx = expectStatus(await api('GET', `${C.nodes[0].baseUrl}/v1/token/session`, { token: agent.token }), 200, 'context');
  const cap = ctx.proxy_base.split('/v1/proxy/')[1];
  assert.ok(cap, `proxy_base ${ctx.proxy_base}`);
  const onB = `${C.nodes[1].proxyUrl}/v1/proxy/${cap}`;
  const r = await get(proxyUrl(onB, 'css', url) + '?r=1');
  assert.equal(r.status, 200, `node B serves the copy uploaded on node A: ${r.status} ${r.text}`);
  assert.match(r.text, /cluster-copy\{color:green\}/);
  // A session's uploaded copy is served before any fetch (docs/proxy.md), on every node.
  assert.equal(O.hits('/site.css'), 0, 'node B served the copy without asking the origin');
});

test('which node serves a session: GET /v1/sessions/{id} names the visitor\'s node on every node', async () => {
  const tenant = await P.tenant();
  const s = await P.session(tenant.id);
  const node = async (i) => (await api('GET', `${C.nodes[i].baseUrl}/v1/sessions/${s.id}`,
    { token: C.nodes[0].adminToken, tenant: tenant.id })).body.relay_node;
  assert.equal(await node(0), null, 'no visitor yet: null');
  const { v, page } = await visitorWithPage(1, s);
  assert.deepEqual([await node(0), await node(2)], ['node-1', 'node-1']);
  await v.terminate();
  page.detach();
  const back = track(await connectVisitor(relay(2), s.visitor_token, { resume: page.lastSeq, label: 'visitor on node-2' }));
  assert.equal(back.hello.have, 1);
  assert.equal(await node(1), 'node-2', 'the visitor moved to node 2');
});

test('the tenant\'s new sessions per minute and a session\'s agents are counted across nodes: 4029 and 4031 after the upgrade', async () => {
  // The REST API would refuse the second session itself: the tokens are signed again (the nodes'
  // shared secret) with lim sessions_per_minute 1 (GCRA, burst 1) and agents_per_session 1.
  const tenant = await P.tenant();
  const limited = (token) => {
    const j = parseJwt(token);
    return signJwt(j.header, { ...j.payload, lim: { ...j.payload.lim, sessions_per_minute: 1, agents_per_session: 1 } }, C.nodes[0].jwtSecret);
  };
  const [s1, s2] = await Promise.all([P.session(tenant.id), P.session(tenant.id)]);
  s1.visitor_token = limited(s1.visitor_token);
  await visitorWithPage(0, s1);
  const r = await handshake(relay(1), limited(s2.visitor_token), { label: 'second new session, on node 1' });
  assert.ok(r.client, `refused after the upgrade, not as HTTP: ${r.rejected && r.rejected.text}`);
  const c = track(r.client);
  const closed = await c.nextClose(5000);
  assert.equal(closed.code, 4029, `close code: ${c.describe()}`);
  const reason = JSON.parse(closed.reason);
  assert.equal(reason.code, 'rate_limited', closed.reason);
  assert.ok(reason.retry_ms > 1000 && reason.retry_ms <= 60_000, `retry_ms: ${closed.reason}`);

  // One agent on node 2: admitted; a second agent of the same session on node 1: 4031, final.
  const a1 = track(await connectAgent(relay(2), limited((await P.agentToken(tenant.id, s1.id)).token), { label: 'agent on node-2' }));
  assert.equal(a1.hello.role, 'agent');
  const r2 = await handshake(relay(1), limited((await P.agentToken(tenant.id, s1.id)).token), { label: 'second agent' });
  assert.ok(r2.client, `refused after the upgrade: ${r2.rejected && r2.rejected.text}`);
  const c2 = track(r2.client);
  const closed2 = await c2.nextClose(5000);
  assert.equal(closed2.code, 4031, `close code: ${c2.describe()}`);
  assert.deepEqual(JSON.parse(closed2.reason), { code: 'agent_limit' });
});
