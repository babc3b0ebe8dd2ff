// The node-wide memory ceiling (docs/protocol.md, "Backpressure") must not stall the node: many
// sessions stream past --relay-max-memory, and every one of them keeps moving. Snapshots always
// get through (they replace their session's history), an event refused for memory comes with a
// snapshot_request, and near the ceiling the sessions holding the most history are asked first.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { connectVisitor, VisitorPage, payloadFor, HEADER_BYTES } from './lib/relay.mjs';
import { platform } from './lib/platform.mjs';
import { startServer, assertCleanExit } from './lib/server.mjs';

const MiB = 1 << 20;
const SESSIONS = 16;
const EVENTS = 96;            // per session
const EVENT = 4096;           // bytes per event frame: 16 x 96 x 4 KiB = 6 MiB streamed in all
const SNAPSHOT = 1024;

let S, P, tenant;
const open = new Set();

before(async () => {
  // A 1 MiB ceiling, under a history limit that never asks for snapshots itself.
  S = await startServer({
    name: 'relay-memory',
    flags: { 'relay-max-memory': MiB, 'relay-history-bytes': 64 * MiB },
  });
  P = platform(S);
  tenant = await P.tenant();
});

after(async () => {
  for (const c of open) c.terminate();
  if (S) assertCleanExit(await S.stop());
});

test('sessions streaming past the memory ceiling all keep moving (snapshots pass, the heaviest are asked first)', async () => {
  const pages = [];
  for (let i = 0; i < SESSIONS; i++) {
    const s = await P.session(tenant.id);
    const v = await connectVisitor(S.relayUrl, s.visitor_token);
    open.add(v);
    const page = new VisitorPage({ keep: false, autoSnapshot: (seq) => payloadFor(seq, SNAPSHOT - HEADER_BYTES, 'snap') });
    page.attach(v);
    page.snapshot(payloadFor(1, SNAPSHOT - HEADER_BYTES, 'snap'));
    pages.push({ page, v });
  }
  // Round robin: every session streams at once, past the ceiling several times over.
  for (let k = 0; k < EVENTS; k++) {
    for (const { page, v } of pages) {
      page.event(payloadFor(page.nextSeq, EVENT - HEADER_BYTES));
      await v.drain(MiB);
    }
    await new Promise((r) => setImmediate(r));
  }
  // Every session moves: all it sent is acked (under a stalled node nothing would be, ever).
  await Promise.all(pages.map(({ page }, i) => page.acked(page.lastSeq, 60_000)
    .catch((e) => { throw new Error(`session ${i}: ${e.message}`); })));
  const memory = pages.reduce((n, { page }) => n + page.counts.slow_down, 0);
  const asked = pages.reduce((n, { page }) => n + page.snapshotRequests.filter((r) => r.reason === 'memory').length, 0);
  const metrics = await (await fetch(`${S.baseUrl}/metrics`)).text();
  const num = (re) => Number((metrics.match(re) || [])[1]);
  const mem = num(/^relay_memory_bytes (\d+)/m);
  assert.ok(asked > 0, 'sessions were asked for a snapshot because of memory');
  assert.ok(mem <= 2 * MiB, `relay_memory_bytes ${mem} stays near the 1 MiB ceiling`);
  console.log(`# slow_down ${memory}, snapshot_request(memory) ${asked}, relay_memory_bytes ${mem}, ` +
    `requested by the relay ${num(/^relay_snapshot_requests_memory_total (\d+)/m)}`);
});
