// The visitor's frame and byte budgets (docs/protocol.md: hello.limits, slow_down): frames over
// the tenant's frames_per_second or bytes_per_second are not stored, the visitor is told to
// slow down and resend, and agents still get every seq once, in order.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { connectVisitor, connectAgent, VisitorPage, agentView, assertFramesEqual, payloadFor, sleep } from './lib/relay.mjs';
import { platform, defaultServer } from './lib/platform.mjs';
import { assertCleanExit } from './lib/server.mjs';

let srv, P;
const open = new Set();
const track = (c) => { open.add(c); return c; };

before(async () => {
  srv = await defaultServer();
  P = platform(srv);
});

after(async () => {
  for (const c of open) c.terminate();
  if (srv && srv.own) assertCleanExit(await srv.stop());
});

async function flood(limits, count, size) {
  const tenant = await P.tenant({ limits });
  const s = await P.session(tenant.id);
  const v = track(await connectVisitor(srv.relayUrl, s.visitor_token));
  const page = new VisitorPage();
  page.attach(v);
  page.snapshot(payloadFor(1, size, 'snap'));
  await page.acked(1);
  const a = track(await connectAgent(srv.relayUrl, (await P.agentToken(tenant.id, s.id)).token));
  await a.waitForSeq(1);
  const t0 = Date.now();
  for (let k = 0; k < count; k++) page.event(payloadFor(page.nextSeq, size));
  const last = page.lastSeq;
  await page.acked(last, 20_000);
  await a.waitForSeq(last, 20_000);
  const ms = Date.now() - t0;
  await sleep(100);
  assertFramesEqual(agentView(a.items, 'agent').frames, page, 1, last, 'agent');
  return { v, page, ms };
}

test('over frames_per_second the visitor gets slow_down(frame_rate), resends, and nothing is lost', async (t) => {
  const { v, page, ms } = await flood({ frames_per_second: 100 }, 300, 100);
  assert.equal(v.hello.limits.frames_per_second, 100, `hello.limits: ${JSON.stringify(v.hello.limits)}`);
  t.diagnostic(`301 frames at 100/s took ${ms} ms; visitor ${JSON.stringify(page.counts)}`);
  assert.ok(page.slowDowns.length >= 1, 'the visitor was told to slow down');
  for (const m of page.slowDowns) {
    assert.equal(m.reason, 'frame_rate', JSON.stringify(m));
    assert.ok(Number.isInteger(m.from) && m.from >= 2, JSON.stringify(m));
    assert.ok(Number.isInteger(m.retry_after_ms) && m.retry_after_ms > 0, JSON.stringify(m));
  }
  assert.ok(ms >= 1500, `301 frames at 100 a second cannot all be stored in ${ms} ms`);
});

test('over bytes_per_second the visitor gets slow_down(byte_rate), resends, and nothing is lost', async (t) => {
  const { v, page, ms } = await flood({ bytes_per_second: 200_000 }, 50, 10_000);
  assert.equal(v.hello.limits.bytes_per_second, 200_000, `hello.limits: ${JSON.stringify(v.hello.limits)}`);
  t.diagnostic(`~500 KB at 200 KB/s took ${ms} ms; visitor ${JSON.stringify(page.counts)}`);
  assert.ok(page.slowDowns.length >= 1, 'the visitor was told to slow down');
  for (const m of page.slowDowns) assert.equal(m.reason, 'byte_rate', JSON.stringify(m));
  assert.ok(ms >= 800, `~500 KB at 200 KB a second cannot all be stored in ${ms} ms`);
});
