// Relay frames for the tests: the 16-byte header of docs/protocol.md ("Data frames"), payloads
// that name their seq, and the subprotocol names.

import { createHash } from 'node:crypto';

export const SUBPROTOCOL = 'cobrowse.v1';
export const VISITOR_SUBPROTOCOL = 'cobrowse.visitor.v1'; // the same protocol, a bigger receive buffer
export const KIND_SNAPSHOT = 1;
export const KIND_EVENT = 2;
export const HEADER_BYTES = 16;

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
export { sleep };

// ---------------------------------------------------------------------------------------------
// Frame header

/** encodeFrame({kind, seq, payload, flags=0, version=1, reserved=0}) -> Buffer (header + payload) */
export function encodeFrame({ kind, seq, payload = Buffer.alloc(0), flags = 0, version = 1, reserved = 0 }) {
  const h = Buffer.alloc(HEADER_BYTES);
  h.writeUInt8(version, 0);
  h.writeUInt8(kind, 1);
  h.writeUInt16BE(flags, 2);
  h.writeUInt32BE(reserved, 4);
  h.writeBigUInt64BE(BigInt(seq), 8);
  const p = Buffer.isBuffer(payload) ? payload : Buffer.from(payload, 'utf8');
  return Buffer.concat([h, p]);
}

/** decodeFrame(buf) -> {version, kind, flags, reserved, seq, payload}; throws if under 16 bytes. */
export function decodeFrame(buf) {
  if (buf.length < HEADER_BYTES) throw new Error(`frame of ${buf.length} bytes has no 16-byte header`);
  const seq = buf.readBigUInt64BE(8);
  return {
    version: buf.readUInt8(0),
    kind: buf.readUInt8(1),
    flags: buf.readUInt16BE(2),
    reserved: buf.readUInt32BE(4),
    seq: seq <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(seq) : seq,
    payload: buf.subarray(HEADER_BYTES),
  };
}

/** An rrweb-like JSON payload of about `size` bytes that names its seq (so mix-ups show). */
export function payloadFor(seq, size = 64, tag = 'e') {
  const head = `[{"type":3,"tag":"${tag}","seq":${seq},"data":{"pad":"`;
  const tail = '"}}]';
  const n = Math.max(0, size - head.length - tail.length);
  const pad = createHash('sha256').update(`${tag}:${seq}`).digest('base64url').repeat(Math.ceil(n / 43) + 1).slice(0, n);
  return Buffer.from(head + pad + tail, 'utf8');
}

export const md5 = (buf) => createHash('md5').update(buf).digest('hex');
