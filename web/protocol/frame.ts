// The relay's binary data frame (docs/protocol.md, "Data frames"): a 16-byte big-endian header,
// then an opaque payload (rrweb events as a JSON array, deflate-raw compressed when flag bit 0 is
// set). The one place in the browser code that reads or writes it; the C side is core/frame.h,
// and both are checked against tests/vectors/frames.json.

export const FRAME_HEADER_LEN = 16;
export const FRAME_VERSION = 1;
export const KIND_SNAPSHOT = 1;
export const KIND_EVENT = 2;
export const FLAG_DEFLATE = 1;

export type FrameKind = typeof KIND_SNAPSHOT | typeof KIND_EVENT;

export interface FrameHeader {
  kind: FrameKind;
  flags: number;
  seq: number;
}

/** The header and payload as one message. seq must be a safe integer >= 1. */
export function encodeFrame(h: FrameHeader, payload: Uint8Array): Uint8Array {
  if (!Number.isSafeInteger(h.seq) || h.seq < 1) throw new RangeError(`bad seq ${h.seq}`);
  const out = new Uint8Array(FRAME_HEADER_LEN + payload.byteLength);
  const dv = new DataView(out.buffer);
  dv.setUint8(0, FRAME_VERSION);
  dv.setUint8(1, h.kind);
  dv.setUint16(2, h.flags);
  dv.setUint32(4, 0);
  dv.setBigUint64(8, BigInt(h.seq));
  out.set(payload, FRAME_HEADER_LEN);
  return out;
}

/** The header of a message, or null when it is not a valid v1 frame (same rules as core/frame.h). */
export function decodeHeader(buf: ArrayBuffer | Uint8Array): FrameHeader | null {
  const u8 = buf instanceof Uint8Array ? buf : new Uint8Array(buf);
  if (u8.byteLength < FRAME_HEADER_LEN) return null;
  const dv = new DataView(u8.buffer, u8.byteOffset, u8.byteLength);
  const version = dv.getUint8(0);
  const kind = dv.getUint8(1);
  const flags = dv.getUint16(2);
  const reserved = dv.getUint32(4);
  const seq = dv.getBigUint64(8);
  if (version !== FRAME_VERSION || (kind !== KIND_SNAPSHOT && kind !== KIND_EVENT)) return null;
  if ((flags & ~FLAG_DEFLATE) !== 0 || reserved !== 0 || seq === 0n) return null;
  if (seq > BigInt(Number.MAX_SAFE_INTEGER)) return null;
  return { kind: kind as FrameKind, flags, seq: Number(seq) };
}

/** The payload bytes of a message whose header decodeHeader accepted (a view, not a copy). */
export function framePayload(buf: ArrayBuffer | Uint8Array): Uint8Array {
  const u8 = buf instanceof Uint8Array ? buf : new Uint8Array(buf);
  return u8.subarray(FRAME_HEADER_LEN);
}

const enc = new TextEncoder();
const dec = new TextDecoder();

/** Payloads smaller than this go uncompressed by default: deflate saves little on them and costs
 * the visitor's main thread a stream setup per frame. */
export const COMPRESS_MIN_BYTES = 1024;

async function pipe(data: Uint8Array, stream: CompressionStream | DecompressionStream): Promise<Uint8Array> {
  // Straight into the stream's writer: a Blob round trip cost more than the compression itself.
  const w = stream.writable.getWriter();
  void w.write(data as BufferSource).catch(() => undefined);
  void w.close().catch(() => undefined);
  return new Uint8Array(await new Response(stream.readable).arrayBuffer());
}

/** Serializes events (or their JSON text) into a payload: deflate-raw (flag set) when the
 * browser has CompressionStream and the JSON is at least minBytes, plain otherwise. */
export async function encodePayload(
  events: unknown[] | string,
  minBytes = COMPRESS_MIN_BYTES,
): Promise<{ payload: Uint8Array; flags: number }> {
  const json = enc.encode(typeof events === 'string' ? events : JSON.stringify(events));
  if (typeof CompressionStream === 'undefined' || json.byteLength < minBytes) return { payload: json, flags: 0 };
  return { payload: await pipe(json, new CompressionStream('deflate-raw')), flags: FLAG_DEFLATE };
}

/** The events of a frame's payload. Throws on a payload that is not a JSON array. */
export async function decodePayload(payload: Uint8Array, flags: number): Promise<unknown[]> {
  const raw = flags & FLAG_DEFLATE ? await pipe(payload, new DecompressionStream('deflate-raw')) : payload;
  const v = JSON.parse(dec.decode(raw));
  if (!Array.isArray(v)) throw new TypeError('frame payload is not a JSON array');
  return v;
}
