// Benchmark (not a test) of the relay's priority lane: N sessions, each with a visitor and an
// agent, lose every socket at once and all 2N clients reconnect with `resume` at once. Prints
// the time until every client has its hello, on two nodes started in the same run:
//   lane      --relay-handshakes-per-second 200: the burst is 5 times the node's budget (at
//             N = 500), so resumes get in only through the priority lane;
//   baseline  an unthrottled node (budget 1,000,000): what the machine allows at best.
// The ratio is what the lane costs; tests/relay/priority.test.mjs checks the behaviour.
//
// Usage (scripts/bench-priority.sh sets the environment): node bench/priority/resume-burst.mjs [N]
// Environment: COBROWSED (a release build), DATABASE_URL.

import {
  connectVisitor, connectAgent, handshake, VisitorPage, payloadFor, connectWithRetry,
} from '../../tests/relay/lib/relay.mjs';
import { platform } from '../../tests/relay/lib/platform.mjs';
import { pool } from '../../tests/relay/lib/pool.mjs';
import { startServer } from '../../tests/relay/lib/server.mjs';

const N = Number(process.argv[2] || 500);

/** Milliseconds from the burst until all 2N hellos, and how many handshakes were refused. */
async function burst(label, handshakesPerSecond) {
  const S = await startServer({ name: `bench-${label}`, flags: { 'relay-handshakes-per-second': handshakesPerSecond } });
  const clients = [];
  try {
    const P = platform(S);
    const A = await P.tenant({ limits: { sessions_per_minute: 100000 } });
    const sessions = await pool(Array.from({ length: N }, (_, k) => k), 16, async () => {
      const s = await P.session(A.id);
      return { s, agentToken: (await P.agentToken(A.id, s.id)).token };
    });
    await pool(sessions, 50, async (x) => {
      x.v = await connectWithRetry(() => connectVisitor(S.relayUrl, x.s.visitor_token), { deadlineMs: 60_000 });
      x.page = new VisitorPage();
      x.page.attach(x.v);
      x.page.snapshot(payloadFor(1, 600, 'snap'));
      x.a = await connectWithRetry(() => connectAgent(S.relayUrl, x.agentToken), { deadlineMs: 60_000 });
      clients.push(x.v, x.a);
    });
    await Promise.all(sessions.map((x) => Promise.all([x.page.acked(1, 30_000), x.a.waitForSeq(1, 30_000)])));
    for (const x of sessions) { x.v.terminate(); x.a.terminate(); }
    await Promise.all(sessions.flatMap((x) => [x.v.closed, x.a.closed]));
    // A second apart, so the node's budget is full again when the burst starts.
    await new Promise((r) => setTimeout(r, 1100));

    const t0 = performance.now();
    const results = await Promise.all(sessions.flatMap((x) => [
      handshake(S.relayUrl, x.s.visitor_token, { resume: 1 }),
      handshake(S.relayUrl, x.agentToken, { resume: x.a.lastSeq }),
    ]));
    const refused = results.filter((r) => r.rejected).length;
    await Promise.all(results.filter((r) => r.client).map((r) => { clients.push(r.client); return r.client.nextJson('hello', 60_000); }));
    return { ms: performance.now() - t0, refused };
  } finally {
    for (const c of clients) c.terminate();
    await S.stop();
  }
}

const lane = await burst('lane', 200);
const base = await burst('baseline', 1_000_000);
const row = (name, r) => `  ${name.padEnd(34)} ${r.ms.toFixed(0).padStart(7)} ms   ${String(r.refused).padStart(4)} refused`;
console.log(`\n${2 * N} clients resuming at once (${N} sessions x visitor + agent), time to every hello:`);
console.log(row('priority lane (budget 200/s)', lane));
console.log(row('baseline: unthrottled node', base));
console.log(`  ratio lane / baseline:             ${(lane.ms / base.ms).toFixed(2)}`);
