// The browser's frame encoder/decoder (frame.ts) against the vectors the C tests also check
// (tests/vectors/frames.json).
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { load } from './bundle.mjs';

const here = dirname(fileURLToPath(import.meta.url));
const vectors = JSON.parse(readFileSync(join(here, '..', '..', 'tests', 'vectors', 'frames.json'), 'utf8'));
const frame = await load('protocol/frame.ts');
const bytes = (hex) => new Uint8Array(Buffer.from(hex, 'hex'));

test('every valid vector decodes to its fields, and encodes back to the same bytes', () => {
  for (const v of vectors.valid) {
    const h = frame.decodeHeader(bytes(v.hex));
    assert.deepEqual(h, { kind: v.kind, flags: v.flags, seq: v.seq }, v.hex);
    assert.equal(Buffer.from(frame.framePayload(bytes(v.hex))).toString('hex'), v.payload_hex);
    const again = frame.encodeFrame(h, bytes(v.payload_hex));
    assert.equal(Buffer.from(again).toString('hex'), v.hex);
  }
});

test('every invalid vector is refused', () => {
  for (const v of vectors.invalid) assert.equal(frame.decodeHeader(bytes(v.hex)), null, v.why);
});

test('seq 0 and unsafe integers cannot be encoded', () => {
  assert.throws(() => frame.encodeFrame({ kind: 2, flags: 0, seq: 0 }, new Uint8Array()));
  assert.throws(() => frame.encodeFrame({ kind: 2, flags: 0, seq: 2 ** 53 }, new Uint8Array()));
});

test('payloads: small ones plain, large ones deflate-raw, both decode to the same events', async () => {
  const small = [{ type: 3, data: { source: 0 } }];
  const s = await frame.encodePayload(small);
  assert.equal(s.flags, 0);
  assert.deepEqual(await frame.decodePayload(s.payload, s.flags), small);
  const large = Array.from({ length: 200 }, (_, i) => ({ type: 3, timestamp: i, data: { text: 'x'.repeat(20) } }));
  const l = await frame.encodePayload(large);
  if (typeof CompressionStream !== 'undefined') assert.equal(l.flags, frame.FLAG_DEFLATE);
  assert.ok(l.payload.byteLength < JSON.stringify(large).length);
  assert.deepEqual(await frame.decodePayload(l.payload, l.flags), large);
  await assert.rejects(frame.decodePayload(new TextEncoder().encode('{"not":"an array"}'), 0));
});
