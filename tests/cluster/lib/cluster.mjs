// N cobrowsed nodes of one platform (docs/cluster.md): one PostgreSQL ($DATABASE_URL), one Redis
// (lib/redis.mjs), the same secrets and admin token, and for each node its own API, relay and
// proxy ports and `--node-id node-<i>`.
//
//   const c = await startCluster({ n: 3, flags: { 'relay-handshakes-per-second': 100 } });
//   c.nodes[1].relayUrl ...; c.P.session(tenant.id) (REST fixtures, on node 0)
//   await c.kill(2);            // kill -9 of node 2 (its log stays: c.nodes[2].log())
//   after(() => c.stop());      // every node that was not killed must exit cleanly
//
// A node's log is its stderr (COBROWSE_LOG_LEVEL, default warn); failures print the tails.

import assert from 'node:assert/strict';
import { startServer, sanitizerErrors } from '../../relay/lib/server.mjs';
import { platform } from '../../relay/lib/platform.mjs';
import { startRedis } from './redis.mjs';
import { connectVisitor, connectAgent } from '../../relay/lib/relay.mjs';

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/** GET url -> {status, text, json} (json null unless the body is JSON); never throws on HTTP errors. */
export async function getJson(url) {
  const res = await fetch(url);
  const text = await res.text();
  let json = null;
  try { json = JSON.parse(text); } catch { /* not JSON */ }
  return { status: res.status, text, json };
}

/**
 * startCluster({n, flags, nodeFlags, env, name, redis}) -> {redis, nodes, P, kill(i), restart(i),
 * alive(i), stop(), tails()}
 *
 * flags:     `serve` flags of every node; nodeFlags(i) adds flags for node i.
 * redis:     a lib/redis.mjs server to use (default: one of its own, stopped by stop()).
 */
export async function startCluster({ n = 3, flags = {}, nodeFlags = () => ({}), env = {}, name = 'cluster', redis = null } = {}) {
  const ownRedis = !redis;
  const r = redis || await startRedis({ name });
  const nodes = [];
  const killed = new Set();
  const start = (i, opts = {}) => startServer({
    name: `${name}-${i}`, flags: { ...flags, ...nodeFlags(i) }, env,
    redisUrl: r.url, nodeId: `node-${i}`, ...opts,
  });
  try {
    nodes[0] = await start(0);
    const rest = await Promise.all(Array.from({ length: n - 1 }, (_, k) => start(k + 1, { peer: nodes[0] })));
    rest.forEach((s, k) => { nodes[k + 1] = s; });
    await Promise.all(nodes.map((s) => waitReady(s)));
  } catch (e) {
    for (const s of nodes) if (s) s.child.kill('SIGKILL');
    if (ownRedis) await r.stop();
    throw e;
  }

  const c = {
    redis: r,
    nodes,
    P: platform(nodes[0]),
    alive: (i) => !killed.has(i) && nodes[i].child.exitCode === null && nodes[i].child.signalCode === null,
    /** kill -9 of node i; resolves once the process is gone. */
    async kill(i) {
      killed.add(i);
      nodes[i].child.kill('SIGKILL');
      await nodes[i].exited;
    },
    /** Starts node i again (new ports, same node id and secrets) after kill(i). */
    async restart(i) {
      assert.ok(killed.has(i), `node ${i} must be killed before it is restarted`);
      nodes[i] = await start(i, { reuse: nodes[i] });
      killed.delete(i);
      await waitReady(nodes[i]);
      return nodes[i];
    },
    /** The last lines of every node's log (for assertion messages). */
    tails(chars = 1500) {
      return nodes.map((s, i) => `--- node-${i}${killed.has(i) ? ' (killed)' : ''}:\n${s.log().slice(-chars)}`).join('\n');
    },
    /**
     * SIGTERM to every live node; asserts each exits with 0 and that no node's log (killed ones
     * included) has a sanitizer report. Then stops Redis if it is ours.
     */
    async stop() {
      const results = await Promise.all(nodes.map(async (s, i) => {
        if (killed.has(i)) {
          await s.exited;
          await s.stop();
          return { i, killed: true, log: s.log() };
        }
        return { i, killed: false, ...(await s.stop()) };
      }));
      if (ownRedis) await r.stop();
      const bad = [];
      for (const res of results) {
        const san = sanitizerErrors(res.log);
        if (san) bad.push(`node-${res.i}: sanitizer report:\n${san}`);
        else if (!res.killed && res.code !== 0) bad.push(`node-${res.i}: exit status ${res.code ?? res.signal}, log tail:\n${res.log.slice(-2000)}`);
      }
      if (bad.length) throw new Error(bad.join('\n'));
    },
  };
  return c;
}

/** Waits until the node answers /readyz with 200 (its database, and with Redis its cluster link). */
export async function waitReady(s, timeoutMs = 30_000) {
  const end = Date.now() + timeoutMs;
  let last = null;
  for (;;) {
    try {
      last = await getJson(`${s.baseUrl}/readyz`);
      if (last.status === 200) return last;
    } catch (e) { last = { status: 0, text: e.message }; }
    if (Date.now() > end) throw new Error(`${s.nodeId}: /readyz not 200 within ${timeoutMs} ms (last ${last.status} ${last.text})`);
    await sleep(50);
  }
}

/** The node holding a session's visitor according to Redis (meta.vnode), or null. */
export async function vnode(redis, sessionId) {
  const v = await redis.command('HGET', `cb:{${sessionId}}:meta`, 'vnode');
  return v;
}

/**
 * clientsOn(C, tenantId, open) -> {track, visitorOn(i, s, opts), agentOn(i, s, opts)}: clients of
 * session s on node i of cluster C (an agent gets a new agent token unless opts.token, and keeps
 * it in .token; agents record everything). Each is added to the set `open`: terminate them in
 * after().
 */
export function clientsOn(C, tenantId, open) {
  const track = (c) => { open.add(c); return c; };
  return {
    track,
    async visitorOn(i, s, opts = {}) {
      return track(await connectVisitor(C.nodes[i].relayUrl, s.visitor_token, { ...opts, label: `visitor on node-${i}` }));
    },
    async agentOn(i, s, opts = {}) {
      const tok = opts.token || (await C.P.agentToken(tenantId, s.id)).token;
      const a = track(await connectAgent(C.nodes[i].relayUrl, tok, { record: 'full', ...opts, label: `agent on node-${i}` }));
      a.token = tok;
      return a;
    },
  };
}
