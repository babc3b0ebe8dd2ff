// The WebSocket wire itself (docs/protocol.md, "Close codes"), with a raw TCP client so the test
// can send what no WebSocket library would: an unmasked client frame (RFC 6455 5.1: the server
// must close the connection; the relay closes with 1002), and a frame with seq 2^64-1 (1008).

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import { randomBytes } from 'node:crypto';
import { encodeFrame, KIND_SNAPSHOT, VISITOR_SUBPROTOCOL } from './lib/relay.mjs';
import { platform, defaultServer } from './lib/platform.mjs';

let S, P, tenant;
const sockets = new Set();

before(async () => {
  S = await defaultServer();
  P = platform(S);
  tenant = await P.tenant();
});

after(async () => {
  for (const s of sockets) s.destroy();
  await S.stop();
});

/** A raw client: upgrade with the token, then frames in and out by hand. */
class RawClient {
  constructor(sock) {
    this.sock = sock;
    this.buf = Buffer.alloc(0);
    this.frames = []; // {opcode, payload}
    this.ended = false;
    this.waiters = [];
    sock.on('data', (d) => { this.buf = Buffer.concat([this.buf, d]); this.parse(); this.notify(); });
    sock.on('close', () => { this.ended = true; this.notify(); });
    sock.on('error', () => {});
  }

  notify() { for (const w of this.waiters.splice(0)) w(); }

  parse() {
    for (;;) {
      if (this.buf.length < 2) return;
      let len = this.buf[1] & 0x7f, off = 2;
      if (len === 126) { if (this.buf.length < 4) return; len = this.buf.readUInt16BE(2); off = 4; }
      else if (len === 127) { if (this.buf.length < 10) return; len = Number(this.buf.readBigUInt64BE(2)); off = 10; }
      if (this.buf.length < off + len) return;
      this.frames.push({ opcode: this.buf[0] & 0x0f, payload: this.buf.subarray(off, off + len) });
      this.buf = this.buf.subarray(off + len);
    }
  }

  /** Resolves with the first frame matching pred, or rejects at the deadline. */
  async frame(pred, what, timeoutMs = 10_000) {
    const end = Date.now() + timeoutMs;
    for (;;) {
      const f = this.frames.find(pred);
      if (f) return f;
      if (this.ended) throw new Error(`${what}: connection closed without it (got ${this.describe()})`);
      const left = end - Date.now();
      if (left <= 0) throw new Error(`${what}: not received within ${timeoutMs} ms (got ${this.describe()})`);
      await new Promise((r) => { const t = setTimeout(r, left); this.waiters.push(() => { clearTimeout(t); r(); }); });
    }
  }

  describe() {
    return this.frames.map((f) => f.opcode === 1 ? f.payload.toString().slice(0, 60)
      : f.opcode === 8 ? `close ${f.payload.length >= 2 ? f.payload.readUInt16BE(0) : ''}` : `op ${f.opcode}`).join(', ') || 'nothing';
  }

  /** A frame as a client sends it; masked unless told otherwise. */
  send(opcode, payload, { masked = true } = {}) {
    const len = payload.length;
    const head = len < 126 ? Buffer.from([0x80 | opcode, (masked ? 0x80 : 0) | len])
      : Buffer.from([0x80 | opcode, (masked ? 0x80 : 0) | 126, len >> 8, len & 0xff]);
    if (!masked) { this.sock.write(Buffer.concat([head, payload])); return; }
    const key = randomBytes(4);
    const body = Buffer.from(payload);
    for (let i = 0; i < body.length; i++) body[i] ^= key[i % 4];
    this.sock.write(Buffer.concat([head, key, body]));
  }

  closeCode() {
    const f = this.frames.find((x) => x.opcode === 8);
    return f && f.payload.length >= 2 ? f.payload.readUInt16BE(0) : null;
  }
}

async function rawVisitor(token) {
  const url = new URL(S.relayUrl);
  const sock = net.connect({ host: url.hostname, port: Number(url.port) });
  sockets.add(sock);
  await new Promise((resolve, reject) => { sock.once('connect', resolve); sock.once('error', reject); });
  const key = randomBytes(16).toString('base64');
  sock.write(`GET ${url.pathname}?access_token=${token} HTTP/1.1\r\nHost: ${url.host}\r\n` +
    `Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: ${key}\r\n` +
    `Sec-WebSocket-Version: 13\r\nSec-WebSocket-Protocol: ${VISITOR_SUBPROTOCOL}\r\n\r\n`);
  let head = Buffer.alloc(0);
  const rest = await new Promise((resolve, reject) => {
    const onData = (d) => {
      head = Buffer.concat([head, d]);
      const end = head.indexOf('\r\n\r\n');
      if (end < 0) return;
      sock.off('data', onData);
      const status = head.subarray(0, end).toString().split('\r\n')[0];
      if (!/^HTTP\/1\.1 101/.test(status)) reject(new Error(`upgrade refused: ${status}`));
      else resolve(head.subarray(end + 4));
    };
    sock.on('data', onData);
  });
  const c = new RawClient(sock);
  if (rest.length) sock.emit('data', rest);
  await c.frame((f) => f.opcode === 1 && JSON.parse(f.payload).type === 'hello', 'hello');
  return c;
}

test('an unmasked client frame closes the connection with 1002 (RFC 6455 5.1)', async () => {
  // The same bytes masked are fine: the visitor's snapshot is acked.
  const s1 = await P.session(tenant.id);
  const ok = await rawVisitor(s1.visitor_token);
  ok.send(2, encodeFrame({ kind: KIND_SNAPSHOT, seq: 1, payload: Buffer.from('page') }));
  await ok.frame((f) => f.opcode === 1 && JSON.parse(f.payload).type === 'ack', 'ack of a masked frame');
  assert.equal(ok.closeCode(), null);

  const s2 = await P.session(tenant.id);
  const bad = await rawVisitor(s2.visitor_token);
  bad.send(2, encodeFrame({ kind: KIND_SNAPSHOT, seq: 1, payload: Buffer.from('page') }), { masked: false });
  await bad.frame((f) => f.opcode === 8, 'a close frame');
  assert.equal(bad.closeCode(), 1002);
  assert.ok(!bad.frames.some((f) => f.opcode === 1 && JSON.parse(f.payload).type === 'ack'),
    'the unmasked frame must not be taken');
});

test('a frame with seq 2^64-1 closes the visitor with 1008; the session goes on from a new connection', async () => {
  const s = await P.session(tenant.id);
  const v = await rawVisitor(s.visitor_token);
  v.send(2, encodeFrame({ kind: KIND_SNAPSHOT, seq: 2n ** 64n - 1n, payload: Buffer.from('page') }));
  await v.frame((f) => f.opcode === 8, 'a close frame');
  assert.equal(v.closeCode(), 1008);
  const again = await rawVisitor(s.visitor_token);
  const hello = JSON.parse((await again.frame((f) => f.opcode === 1, 'hello')).payload);
  assert.equal(hello.have, 0, 'nothing was stored');
  assert.equal(hello.next_seq, 1);
});
