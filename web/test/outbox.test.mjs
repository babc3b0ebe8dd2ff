// The SDK's batcher and outbox (web/sdk/batcher.ts, outbox.ts): numbering, order, acks, resync
// after a hello, resend and slow_down, the memory bound.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { load } from './bundle.mjs';

const { Outbox, MAX_BYTES } = await load('sdk/outbox.ts');
const { Batcher, BATCH_MS } = await load('sdk/batcher.ts');
const { decodeHeader, decodePayload, framePayload } = await load('protocol/frame.ts');


function harness(nextSeq = 1) {
  const sent = [];
  const h = { sent, snapshots: 0, seq: nextSeq, open: true };
  h.outbox = new Outbox(nextSeq, {
    send: (f) => h.open && (sent.push(f), true),
    needSnapshot: () => h.snapshots++,
    seqChanged: (n) => (h.seq = n),
    tooLarge: () => {},
  });
  h.outbox.setOnline(true);
  h.seqs = () => sent.map((f) => decodeHeader(f).seq);
  return h;
}
const batch = (n, snapshot = false) => ({ snapshot, json: JSON.stringify([{ type: snapshot ? 2 : 3, n }]), count: 1 });

test('frames are numbered from nextSeq and sent in order, whatever their size', async () => {
  const h = harness(7);
  h.outbox.add(batch('big'.repeat(20000), true)); // compressed: slower than the small ones
  for (let i = 0; i < 5; i++) h.outbox.add(batch(i));
  await h.outbox.settled();
  assert.deepEqual(h.seqs(), [7, 8, 9, 10, 11, 12]);
  assert.equal(decodeHeader(h.sent[0]).kind, 1);
  assert.equal(decodeHeader(h.sent[0]).flags, 1, 'a large snapshot is compressed');
  assert.equal(decodeHeader(h.sent[1]).flags, 0, 'a small event frame is not');
  assert.deepEqual(await decodePayload(framePayload(h.sent[3]), 0), [{ type: 3, n: 2 }]);
  assert.equal(h.seq, 13);
});

test('acked frames leave the outbox; the rest are resent after a reconnect', async () => {
  const h = harness();
  for (let i = 0; i < 4; i++) h.outbox.add(batch(i));
  await h.outbox.settled();
  h.outbox.ack(2);
  assert.equal(h.outbox.pending, 2);
  h.outbox.setOnline(false);
  h.sent.length = 0;
  assert.equal(h.outbox.resync(2, 3), true);
  h.outbox.setOnline(true);
  assert.deepEqual(h.seqs(), [3, 4]);
});

test('after a page load the outbox starts with a snapshot past the relay: it continues', async () => {
  const h = harness(20); // the stored nextSeq; the relay has up to 15
  h.outbox.add(batch('page', true));
  await h.outbox.settled();
  h.sent.length = 0;
  assert.equal(h.outbox.resync(15, 16), true);
  h.outbox.pump();
  assert.deepEqual(h.seqs(), [20]);
});

test('when the outbox cannot continue the relay, it empties and numbers past the relay', async () => {
  const h = harness(5);
  h.outbox.add(batch('event'));
  await h.outbox.settled();
  assert.equal(h.outbox.resync(9, 10), false, 'the relay already has seq 5 and more');
  assert.equal(h.outbox.pending, 0);
  assert.equal(h.outbox.nextSeq, 10);
});

test('resend rewinds; slow_down waits before resending; a missing seq asks for a snapshot', async (t) => {
  t.mock.timers.enable({ apis: ['setTimeout', 'Date'], now: 1_000_000 });
  const h = harness();
  for (let i = 0; i < 3; i++) h.outbox.add(batch(i));
  await h.outbox.settled();
  h.sent.length = 0;
  assert.equal(h.outbox.rewind(2), true);
  assert.deepEqual(h.seqs(), [2, 3]);
  h.sent.length = 0;
  assert.equal(h.outbox.rewind(3, 120), true);
  t.mock.timers.tick(119);
  assert.deepEqual(h.seqs(), [], 'nothing before retry_after_ms');
  t.mock.timers.tick(1);
  assert.deepEqual(h.seqs(), [3]);
  h.outbox.ack(3);
  assert.equal(h.outbox.rewind(1), false, 'seq 1 is gone: the caller sends a snapshot');
});

test('past MAX_BYTES the outbox drops everything and asks for a snapshot', async () => {
  const h = harness();
  h.open = false; // nothing leaves, nothing is acked
  const big = 'x'.repeat(40000); // event frames under 32 KiB go uncompressed
  const n = Math.ceil(MAX_BYTES / 30000) + 2;
  for (let i = 0; i < n; i++) h.outbox.add({ snapshot: false, json: JSON.stringify([{ type: 3, s: big.slice(0, 30000), i }]), count: 1 });
  await h.outbox.settled();
  assert.ok(h.snapshots >= 1);
  assert.ok(h.outbox.pending < n);
});

test('batcher: a full snapshot starts a frame of its own; a lone change leaves at once, later ones share a window', (t) => {
  t.mock.timers.enable({ apis: ['setTimeout', 'Date'], now: 1_000_000 });
  const sealed = [];
  const b = new Batcher((x) => sealed.push({ ...x, at: Date.now() }), () => Date.now());
  b.push({ type: 3, a: 1 });
  b.push({ type: 4 }); // Meta: the pending event goes first, as an event frame
  b.push({ type: 2 }); // FullSnapshot: sealed at once
  assert.deepEqual(sealed.map((s) => [s.snapshot, JSON.parse(s.json).map((e) => e.type)]), [[false, [3]], [true, [4, 2]]]);
  sealed.length = 0;
  t.mock.timers.tick(BATCH_MS + 10);
  const t0 = Date.now();
  b.push({ type: 3, lone: true });
  t.mock.timers.tick(0);
  assert.equal(sealed.length, 1, 'the first change after a quiet moment is not held');
  assert.equal(sealed[0].at, t0, 'it leaves in the next task');
  b.push({ type: 3, x: 1 });
  b.push({ type: 3, x: 2 });
  t.mock.timers.tick(BATCH_MS - 1);
  assert.equal(sealed.length, 1, 'the next ones wait for the window');
  t.mock.timers.tick(1);
  assert.equal(sealed.length, 2);
  assert.equal(sealed[1].at, t0 + BATCH_MS, 'at the end of the window');
  assert.equal(JSON.parse(sealed[1].json).length, 2);
});
