// Frame limits and the history (docs/protocol.md "Data frames", "History", "Close codes"):
// oversized and invalid messages close the connection with the documented code; a full history
// asks the visitor for a snapshot; past twice the limit, joining agents wait for the snapshot.
//
// Two private servers: one with --relay-max-frame-bytes 65536, one with --relay-history-bytes
// 65536.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import {
  connectVisitor, connectAgent, VisitorPage, agentView, assertFramesEqual, payloadFor,
  encodeFrame, decodeFrame, KIND_SNAPSHOT, KIND_EVENT, HEADER_BYTES, sleep,
} from './lib/relay.mjs';
import { platform } from './lib/platform.mjs';
import { startServer, assertCleanExit, rssBytes } from './lib/server.mjs';
import net from 'node:net';
import crypto from 'node:crypto';
import { readFileSync } from 'node:fs';

const MAX_FRAME = 65536;
const HISTORY = 65536;
let FS, HS, PF, PH, tf, th;
const open = new Set();
const track = (c) => { open.add(c); return c; };

before(async () => {
  [FS, HS] = await Promise.all([
    startServer({ name: 'relay-frames', flags: { 'relay-max-frame-bytes': MAX_FRAME } }),
    startServer({ name: 'relay-history', flags: { 'relay-history-bytes': HISTORY } }),
  ]);
  PF = platform(FS);
  PH = platform(HS);
  [tf, th] = await Promise.all([PF.tenant(), PH.tenant()]);
});

after(async () => {
  for (const c of open) c.terminate();
  const res = await Promise.all([FS, HS].filter(Boolean).map((s) => s.stop()));
  for (const r of res) assertCleanExit(r);
});

/** A new session on the frame-limit server with its visitor (snapshot 1 sent and acked). */
async function liveF() {
  const s = await PF.session(tf.id);
  const v = track(await connectVisitor(FS.relayUrl, s.visitor_token));
  v.sendFrame({ kind: KIND_SNAPSHOT, seq: 1, payload: payloadFor(1, 200, 'snap') });
  await v.nextJson('ack', 3000, (m) => m.seq >= 1);
  return { s, v };
}

async function expectClose(c, code, what) {
  const cl = await c.nextClose(3000);
  assert.equal(cl.code, code, `${what}: expected close ${code}, got ${cl.code} ${JSON.stringify(cl.reason)}`);
}

// The tests' frame codec (lib/frames.mjs) against the vectors the C header (core/base/frame.h)
// and the browser's protocol module are checked with: one definition of the header, three users.
test('lib/frames.mjs encodes and decodes the shared frame vectors (tests/vectors/frames.json)', () => {
  const vectors = JSON.parse(readFileSync(new URL('../vectors/frames.json', import.meta.url), 'utf8'));
  for (const v of vectors.valid) {
    const payload = Buffer.from(v.payload_hex, 'hex');
    assert.equal(encodeFrame({ kind: v.kind, flags: v.flags, seq: BigInt(v.seq), payload }).toString('hex'), v.hex);
    const d = decodeFrame(Buffer.from(v.hex, 'hex'));
    assert.deepEqual([d.kind, d.flags, BigInt(d.seq), d.payload.toString('hex')], [v.kind, v.flags, BigInt(v.seq), v.payload_hex]);
  }
});

test('a binary message over --relay-max-frame-bytes closes with 1009; one of exactly that size is accepted', async () => {
  const { v } = await liveF();
  assert.equal(v.hello.limits.max_frame_bytes, MAX_FRAME, `hello.limits: ${JSON.stringify(v.hello.limits)}`);
  v.sendFrame({ kind: KIND_EVENT, seq: 2, payload: Buffer.alloc(MAX_FRAME - HEADER_BYTES, 0x61) });
  const ack = await v.nextJson('ack', 3000, (m) => m.seq >= 2);
  assert.equal(ack.seq, 2, 'a message of exactly max_frame_bytes is stored');
  v.sendFrame({ kind: KIND_EVENT, seq: 3, payload: Buffer.alloc(MAX_FRAME - HEADER_BYTES + 1, 0x61) });
  await expectClose(v, 1009, 'max_frame_bytes + 1');
});

/** Opens a raw WebSocket (no library) and returns the socket once the 101 has arrived. */
async function rawVisitor(url, token) {
  const u = new URL(url);
  const sock = net.connect(Number(u.port), u.hostname);
  await new Promise((res, rej) => { sock.once('connect', res); sock.once('error', rej); });
  const key = crypto.randomBytes(16).toString('base64');
  sock.write(`GET ${u.pathname}?access_token=${token} HTTP/1.1\r\nHost: ${u.host}\r\n` +
    `Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: ${key}\r\n` +
    'Sec-WebSocket-Version: 13\r\nSec-WebSocket-Protocol: cobrowse.visitor.v1\r\n\r\n');
  let buf = Buffer.alloc(0);
  await new Promise((res, rej) => {
    const t = setTimeout(() => rej(new Error('no 101')), 3000);
    sock.on('data', function onData(d) {
      buf = Buffer.concat([buf, d]);
      if (buf.includes('\r\n\r\n')) { clearTimeout(t); sock.off('data', onData); res(); }
    });
  });
  assert.match(buf.toString('latin1'), /^HTTP\/1\.1 101/, 'upgraded');
  return sock;
}

test('a frame that only announces a huge length is refused with 1009 before anything is allocated for it', async () => {
  const s = await PF.session(tf.id);
  const sock = await rawVisitor(FS.relayUrl, s.visitor_token);
  const before = await rssBytes(FS.pid);
  // A masked binary frame header announcing 2^40 bytes, then 64 bytes of it and no more.
  const hdr = Buffer.alloc(14);
  hdr[0] = 0x82; hdr[1] = 0x80 | 127;
  hdr.writeBigUInt64BE(1n << 40n, 2);
  crypto.randomBytes(4).copy(hdr, 10);
  const frames = [];
  sock.on('data', (d) => frames.push(d));
  const closed = new Promise((res) => sock.once('close', res));
  sock.write(Buffer.concat([hdr, crypto.randomBytes(64)]));
  await Promise.race([closed, sleep(3000)]);
  const all = Buffer.concat(frames);
  // The server's close frame: opcode 8, then the 2-byte code (after any hello/ack text frames).
  let i = 0, code = null;
  while (i + 2 <= all.length) {
    const op = all[i] & 0x0f; let len = all[i + 1] & 0x7f, off = 2;
    if (len === 126) { len = all.readUInt16BE(i + 2); off = 4; }
    if (op === 8) { code = all.readUInt16BE(i + off); break; }
    i += off + len;
  }
  assert.equal(code, 1009, `close code for an announced 1 TiB frame: ${code}`);
  const after = await rssBytes(FS.pid);
  assert.ok(after - before < 8 * 1024 * 1024, `server RSS grew by ${after - before} bytes`);
  sock.destroy();
});

test('invalid UTF-8 in a text message closes with 1007 (visitor and agent)', async () => {
  const { s, v } = await liveF();
  v.sendText(Buffer.from([0x7b, 0x22, 0x74, 0xff, 0xfe, 0x22, 0x7d])); // {"t\xff\xfe"}
  await expectClose(v, 1007, 'visitor, invalid UTF-8');
  const t = await PF.agentToken(tf.id, s.id);
  const a = track(await connectAgent(FS.relayUrl, t.token));
  a.sendText(Buffer.from('{"type":"pointer","x":1,"y":2,"ref":"\xc3\x28"}', 'latin1'));
  await expectClose(a, 1007, 'agent, invalid UTF-8');
});

test('protocol violations close with 1008: binary from an agent, malformed headers, text over 4 KiB', async () => {
  {
    const { s } = await liveF();
    const t = await PF.agentToken(tf.id, s.id);
    const a = track(await connectAgent(FS.relayUrl, t.token));
    a.sendFrame({ kind: KIND_EVENT, seq: 2, payload: payloadFor(2, 50) });
    await expectClose(a, 1008, 'binary frame from an agent');
  }
  const bad = [
    ['shorter than the header', Buffer.from([1, 2, 0, 0, 0, 0, 0, 0, 0, 2])],
    ['version 2', encodeFrame({ version: 2, kind: KIND_EVENT, seq: 2, payload: payloadFor(2, 50) })],
    ['kind 3', encodeFrame({ kind: 3, seq: 2, payload: payloadFor(2, 50) })],
    ['kind 0', encodeFrame({ kind: 0, seq: 2, payload: payloadFor(2, 50) })],
    ['reserved not 0', encodeFrame({ kind: KIND_EVENT, seq: 2, reserved: 1, payload: payloadFor(2, 50) })],
    ['an unknown flag bit', encodeFrame({ kind: KIND_EVENT, seq: 2, flags: 0x8000, payload: payloadFor(2, 50) })],
  ];
  for (const [name, buf] of bad) {
    const { v } = await liveF();
    v.sendBinary(buf);
    await expectClose(v, 1008, `visitor, ${name}`);
  }
  {
    const { v } = await liveF();
    v.send({ type: 'consent', remote_control: 'granted', pad: 'x'.repeat(4200) });
    await expectClose(v, 1008, 'visitor, text over 4 KiB');
  }
  {
    const { s } = await liveF();
    const t = await PF.agentToken(tf.id, s.id);
    const a = track(await connectAgent(FS.relayUrl, t.token));
    a.send({ type: 'pointer', x: 1, y: 1, ref: 'x'.repeat(4200) });
    await expectClose(a, 1008, 'agent, text over 4 KiB');
  }
  {
    // Exactly 4 KiB is fine.
    const { s } = await liveF();
    const t = await PF.agentToken(tf.id, s.id);
    const a = track(await connectAgent(FS.relayUrl, t.token));
    const base = JSON.stringify({ type: 'pointer', x: 1, y: 1, ref: '' });
    a.send({ type: 'pointer', x: 1, y: 1, ref: 'r'.repeat(4096 - base.length) });
    await sleep(200);
    assert.ok(a.open, `a 4096-byte text message is allowed: ${a.describe()}`);
  }
});

test('history overflow asks for a snapshot; after it a late agent gets only the new snapshot and what follows', async (t) => {
  const s = await PH.session(th.id);
  const v = track(await connectVisitor(HS.relayUrl, s.visitor_token));
  const page = new VisitorPage();
  page.attach(v);
  page.snapshot(payloadFor(1, 1024 - HEADER_BYTES, 'snap'));
  await page.acked(1);
  const live = track(await connectAgent(HS.relayUrl, (await PH.agentToken(th.id, s.id)).token));
  await live.waitForSeq(1);

  // 4 KiB events, one at a time, until the relay asks for a snapshot.
  const FRAME = 4096;
  let bytes = 1024;
  let passedAt = null; // the seq whose frame took the history past the limit
  while (page.snapshotRequests.length === 0 && page.lastSeq < 60) {
    page.event(payloadFor(page.nextSeq, FRAME - HEADER_BYTES));
    bytes += FRAME;
    if (passedAt === null && bytes > HISTORY) passedAt = page.lastSeq;
    await page.acked(page.lastSeq);
    await sleep(5);
  }
  assert.equal(page.snapshotRequests.length >= 1, true, `no snapshot_request after ${bytes} bytes of history (limit ${HISTORY}): ${v.describe()}`);
  const req = page.snapshotRequests[0];
  t.diagnostic(`snapshot_request after seq ${req.atSeq}; the history passed ${HISTORY} bytes at seq ${passedAt}`);
  assert.equal(req.reason, 'history_full');
  assert.ok(req.atSeq >= passedAt - 1 && req.atSeq <= passedAt + 1,
    `snapshot_request when a frame would take the history past ${HISTORY} bytes (seq ${passedAt}), got it after seq ${req.atSeq}`);

  const snapSeq = page.snapshot(payloadFor(page.nextSeq, 2000, 'snap2'));
  for (let k = 0; k < 5; k++) page.event(payloadFor(page.nextSeq, 500));
  const last = page.lastSeq;
  await page.acked(last);

  const late = track(await connectAgent(HS.relayUrl, (await PH.agentToken(th.id, s.id)).token));
  await late.waitForSeq(last);
  await live.waitForSeq(last);
  await sleep(100);
  const lateView = agentView(late.items, 'late agent');
  if (late.hello.resume === 'reset') {
    assert.deepEqual(lateView.resets, [{ type: 'reset', seq: snapSeq, reason: 'join' }], 'reset(join) to the new snapshot');
  }
  assertFramesEqual(lateView.frames, page, snapSeq, last, 'late agent (only the new snapshot and what follows)');
  const liveView = agentView(live.items, 'live agent');
  assertFramesEqual(liveView.frames, page, 1, last, 'live agent (every frame)');
});

test('past twice the history limit: live agents still get every frame, a joining agent gets waiting_snapshot, then the page when the snapshot comes', async () => {
  const s = await PH.session(th.id);
  const v = track(await connectVisitor(HS.relayUrl, s.visitor_token));
  const page = new VisitorPage(); // does not answer snapshot_request
  page.attach(v);
  page.snapshot(payloadFor(1, 1024 - HEADER_BYTES, 'snap'));
  await page.acked(1);
  const live = track(await connectAgent(HS.relayUrl, (await PH.agentToken(th.id, s.id)).token));
  await live.waitForSeq(1);
  for (let k = 0; k < 48; k++) page.event(payloadFor(page.nextSeq, 4096 - HEADER_BYTES)); // ~193 KiB
  const lastBefore = page.lastSeq;
  await page.acked(lastBefore);
  await live.waitForSeq(lastBefore);
  assert.ok(page.snapshotRequests.length >= 1, 'the visitor was asked for a snapshot');

  const late = track(await connectAgent(HS.relayUrl, (await PH.agentToken(th.id, s.id)).token));
  const waiting = await late.nextJson('waiting_snapshot', 3000);
  assert.deepEqual(waiting, { type: 'waiting_snapshot' });
  await sleep(100);
  assert.equal(late.frames.length, 0, `no frames before the snapshot: ${late.describe()}`);

  const snapSeq = page.snapshot(payloadFor(page.nextSeq, 3000, 'snap2'));
  for (let k = 0; k < 3; k++) page.event(payloadFor(page.nextSeq, 200));
  const last = page.lastSeq;
  await page.acked(last);
  await late.waitForSeq(last);
  await live.waitForSeq(last);
  await sleep(100);
  assertFramesEqual(agentView(late.items, 'late agent').frames, page, snapSeq, last, 'late agent');
  assertFramesEqual(agentView(live.items, 'live agent').frames, page, 1, last, 'live agent');
});
