// Draining on SIGTERM (docs/protocol.md "Close codes": 1012, "Connecting": 503 draining): the
// relay closes its clients with 1012 and a JSON reason {"retry_ms"}, and the process exits within
// --relay-drain-seconds (+ 2 s of slack).

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { connectVisitor, connectAgent, handshake, expectRejection, VisitorPage, payloadFor } from './lib/relay.mjs';
import { platform } from './lib/platform.mjs';
import { startServer, assertCleanExit } from './lib/server.mjs';

const DRAIN_SECONDS = 2;
let S;
const open = new Set();

before(async () => {
  S = await startServer({ name: 'relay-drain', flags: { 'relay-drain-seconds': DRAIN_SECONDS } });
});

after(async () => {
  for (const c of open) c.terminate();
  if (S) await S.stop(); // already stopped by the test unless it failed early
});

test('drain on SIGTERM: clients get close 1012 with {"retry_ms"}, the process exits within --relay-drain-seconds + 2 s', async (t) => {
  const P = platform(S);
  const tenant = await P.tenant();
  const s = await P.session(tenant.id);
  const s2 = await P.session(tenant.id);
  const v = await connectVisitor(S.relayUrl, s.visitor_token);
  open.add(v);
  const page = new VisitorPage();
  page.attach(v);
  page.snapshot(payloadFor(1, 500));
  await page.acked(1);
  const a = await connectAgent(S.relayUrl, (await P.agentToken(tenant.id, s.id)).token);
  open.add(a);
  await a.waitForSeq(1);

  const t0 = Date.now();
  const stopped = S.stop({ timeoutMs: (DRAIN_SECONDS + 10) * 1000 });
  const closes = await Promise.all([v, a].map((c) => c.nextClose((DRAIN_SECONDS + 1) * 1000)));
  for (const [k, c] of closes.entries()) {
    const who = k ? 'agent' : 'visitor';
    assert.equal(c.code, 1012, `${who}: close code (reason ${JSON.stringify(c.reason)})`);
    let reason;
    assert.doesNotThrow(() => { reason = JSON.parse(c.reason); }, `${who}: the close reason is JSON: ${JSON.stringify(c.reason)}`);
    assert.ok(Number.isInteger(reason.retry_ms) && reason.retry_ms >= 0, `${who}: reason.retry_ms: ${c.reason}`);
    assert.ok(c.at - t0 <= (DRAIN_SECONDS + 1) * 1000, `${who}: closed ${c.at - t0} ms after SIGTERM`);
  }

  // While it drains, a new handshake is refused with 503 draining (or finds the port closed).
  const r = await handshake(S.relayUrl, s2.visitor_token).catch((e) => ({ error: e }));
  if (r.client) {
    r.client.terminate();
    assert.fail('a handshake during the drain was accepted');
  } else if (r.rejected) {
    expectRejection(r.rejected, 503, 'draining', 'handshake during the drain');
  } else {
    t.diagnostic(`handshake during the drain: ${r.error.code || r.error.message}`);
    assert.match(String(r.error.code || r.error.message), /ECONNREFUSED|ECONNRESET|socket hang up/, 'the port is closed');
  }

  const res = await stopped;
  t.diagnostic(`exited ${res.ms} ms after SIGTERM (status ${res.code ?? res.signal})`);
  assert.ok(res.ms <= (DRAIN_SECONDS + 2) * 1000, `exited ${res.ms} ms after SIGTERM (limit ${(DRAIN_SECONDS + 2) * 1000})`);
  assertCleanExit(res);
});
