// Backpressure (docs/protocol.md "Backpressure"): an agent that stops reading cannot make the
// relay grow; it is moved ahead (reset slow_consumer) or closed with 4008, while a fast agent of
// the same session gets every frame.
//
// A private server with --relay-queue-bytes 1 MiB and --relay-history-bytes 4 MiB. Its RSS is
// read from /proc/<pid>/status while the visitor sends ~94 MiB. When the binary is built with
// AddressSanitizer (scripts/test.sh), freed memory sits in ASan's quarantine (256 MiB by
// default) and would count as RSS: the server gets ASAN_OPTIONS quarantine_size_mb=16 so the
// bound measures the relay, not the sanitizer.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import {
  connectVisitor, connectAgent, VisitorPage, agentView, assertFramesEqual, payloadFor,
  HEADER_BYTES, sleep,
} from './lib/relay.mjs';
import { platform } from './lib/platform.mjs';
import { startServer, assertCleanExit, rssBytes } from './lib/server.mjs';

const MiB = 1 << 20;
const FRAME = 64 * 1024;
const FRAMES = 1500;          // ~94 MiB in all
const RSS_BOUND = 64 * MiB;   // growth allowed: history (<= 2 x 4 MiB) + queues + buffers
let S, P, tenant;
const open = new Set();
const track = (c) => { open.add(c); return c; };

before(async () => {
  const asan = process.env.ASAN_OPTIONS ? `${process.env.ASAN_OPTIONS}:` : '';
  S = await startServer({
    name: 'relay-backpressure',
    flags: { 'relay-queue-bytes': MiB, 'relay-history-bytes': 4 * MiB },
    env: { ASAN_OPTIONS: `${asan}quarantine_size_mb=16` },
  });
  P = platform(S);
  tenant = await P.tenant();
});

after(async () => {
  for (const c of open) c.terminate();
  if (S) assertCleanExit(await S.stop());
});

test('a slow agent stays bounded: reset(slow_consumer) or close 4008, server RSS bounded, a fast agent gets every frame', async (t) => {
  const s = await P.session(tenant.id);
  const v = track(await connectVisitor(S.relayUrl, s.visitor_token));
  const page = new VisitorPage({ keep: false, autoSnapshot: (seq) => payloadFor(seq, FRAME - HEADER_BYTES, 'snap') });
  page.attach(v);
  page.snapshot(payloadFor(1, FRAME - HEADER_BYTES, 'snap'));
  await page.acked(1);
  const fast = track(await connectAgent(S.relayUrl, (await P.agentToken(tenant.id, s.id, { id: 'fast' })).token, { record: 'meta', queue: false }));
  const slow = track(await connectAgent(S.relayUrl, (await P.agentToken(tenant.id, s.id, { id: 'slow' })).token, { record: 'meta' }));
  await Promise.all([fast.waitForSeq(1), slow.waitForSeq(1)]);
  slow.pause();
  await sleep(100);

  const base = await rssBytes(S.pid);
  let peak = base;
  let sampling = true;
  const sampler = (async () => {
    while (sampling) {
      try { peak = Math.max(peak, await rssBytes(S.pid)); } catch { /* exited */ }
      await sleep(20);
    }
  })();

  const t0 = Date.now();
  let last;
  try {
    // As fast as it can, but yielding to the event loop after each frame: this process also
    // reads the fast agent's socket (and the visitor's acks and snapshot requests).
    for (let k = 0; k < FRAMES; k++) {
      page.event(payloadFor(page.nextSeq, FRAME - HEADER_BYTES));
      await v.drain(MiB);
      await new Promise((r) => setImmediate(r));
    }
    last = page.lastSeq;
    await fast.waitForSeq(last, 60_000);
    await page.acked(last, 30_000);
  } finally {
    sampling = false;
    await sampler;
  }
  peak = Math.max(peak, await rssBytes(S.pid));
  t.diagnostic(`sent ${last} frames (${Math.round((last * FRAME) / MiB)} MiB) in ${Date.now() - t0} ms; ` +
    `RSS ${Math.round(base / MiB)} -> peak ${Math.round(peak / MiB)} MiB; visitor: ${JSON.stringify(page.counts)}`);
  assert.ok(peak - base < RSS_BOUND,
    `server RSS grew by ${Math.round((peak - base) / MiB)} MiB while an agent did not read (bound ${RSS_BOUND / MiB} MiB)`);

  // The fast agent got every frame, in order, byte for byte, with no reset.
  const fastView = agentView(fast.items, 'fast agent');
  assert.deepEqual(fastView.resets.filter((r) => r.reason !== 'join'), [], 'the fast agent is never reset');
  // Up to the last event of the loop: a snapshot_request still in flight then is answered with a
  // snapshot after it (autoSnapshot), which the fast agent may or may not have received yet.
  assertFramesEqual(fastView.frames.filter((f) => f.seq <= last), page, 1, last, 'fast agent');

  // The slow one, reading again, is moved ahead or closed with 4008; never handed a gap.
  slow.resume();
  await slow.waitFor((c) => c.closeInfo ||
    (c.jsonOf('reset').some((r) => r.reason === 'slow_consumer') && c.lastSeq >= last), 30_000,
  'reset(slow_consumer) and the frames up to the last, or a close');
  const slowView = agentView(slow.items, 'slow agent');
  const resets = slowView.resets.filter((r) => r.reason === 'slow_consumer');
  t.diagnostic(`slow agent: ${slow.frameCount} frames, resets ${JSON.stringify(slowView.resets)}, close ${JSON.stringify(slow.closeInfo)}`);
  if (slow.closeInfo) {
    assert.equal(slow.closeInfo.code, 4008, `a slow agent is closed with 4008, got ${slow.closeInfo.code} ${slow.closeInfo.reason}`);
  } else {
    assert.ok(resets.length >= 1, 'reset(slow_consumer)');
    assert.ok(slowView.frames.length < last, 'frames were skipped, not all queued');
    const after = slowView.frames.filter((f) => f.seq >= resets[resets.length - 1].seq);
    assertFramesEqual(after, page, resets[resets.length - 1].seq, last, 'slow agent after its reset');
  }
});
