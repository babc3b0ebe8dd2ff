// Debian's HAProxy 2.6 in front of the nodes' relay ports, configured as an operator would run it
// (docs/cluster.md): HTTP mode (a WebSocket upgrade becomes a tunnel), tunnel timeout of an hour
// so idle WebSockets stay open, health checks on each node's /readyz (its API port), a dead node
// taken out after two failed checks, and a connection refused by one node retried on another
// (`option redispatch`). A stats socket in its temp dir tells the test what HAProxy thinks.
//
//   const lb = await startHaproxy(cluster.nodes, { balance: 'roundrobin' });
//   connectVisitor(lb.relayUrl, token) ...
//   await lb.waitStatus((s) => s['node-2'] === 'DOWN');
//   after(() => lb.stop());
//
// Environment: HAPROXY (binary; default haproxy on PATH, /usr/sbin/haproxy on Debian).

import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import net from 'node:net';
import path from 'node:path';
import { freePort } from '../../relay/lib/server.mjs';

const HAPROXY = process.env.HAPROXY || (existsSync('/usr/sbin/haproxy') ? '/usr/sbin/haproxy' : 'haproxy');
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

function config({ port, sock, nodes, balance }) {
  const servers = nodes.map((s) =>
    `  server ${s.nodeId} 127.0.0.1:${s.relayPort} check port ${s.port}`).join('\n');
  return `global
  maxconn 8000
  stats socket ${sock} mode 600 level admin

defaults
  mode http
  timeout connect 2s
  timeout client 60s
  timeout server 60s
  timeout tunnel 1h
  timeout http-request 10s
  retries 3
  option redispatch

frontend relay
  bind 127.0.0.1:${port}
  default_backend nodes

backend nodes
  balance ${balance}
  option httpchk
  http-check send meth GET uri /readyz
  http-check expect status 200
  default-server inter 250ms fall 2 rise 1 maxconn 4000
${servers}
`;
}

/** One command on the stats socket -> its text answer. */
function statsCommand(sock, cmd) {
  return new Promise((resolve, reject) => {
    const s = net.connect(sock);
    let out = '';
    const timer = setTimeout(() => { s.destroy(); reject(new Error(`haproxy "${cmd}": no answer within 5 s`)); }, 5000);
    s.once('connect', () => s.write(`${cmd}\n`));
    s.on('data', (d) => { out += d.toString('utf8'); });
    s.once('end', () => { clearTimeout(timer); resolve(out); });
    s.once('error', (e) => { clearTimeout(timer); reject(e); });
  });
}

/**
 * startHaproxy(nodes, {balance}) -> {port, relayUrl, status(), waitStatus(pred), stop(), log()}
 * nodes: startServer() results (relayPort, port, nodeId). balance: 'roundrobin' or 'leastconn'.
 */
export async function startHaproxy(nodes, { balance = 'roundrobin' } = {}) {
  const dir = mkdtempSync(path.join(tmpdir(), 'cobrowse-haproxy-'));
  const port = await freePort();
  const sock = path.join(dir, 'admin.sock');
  const cfg = path.join(dir, 'haproxy.cfg');
  writeFileSync(cfg, config({ port, sock, nodes, balance }));
  const child = spawn(HAPROXY, ['-db', '-f', cfg], { stdio: ['ignore', 'pipe', 'pipe'] });
  let log = '';
  const keep = (d) => { log += d.toString('utf8'); if (log.length > 100_000) log = log.slice(-50_000); };
  child.stdout.on('data', keep);
  child.stderr.on('data', keep);
  let info = null;
  const exited = new Promise((resolve) => child.once('exit', (code, signal) => { info = { code, signal }; resolve(info); }));
  child.once('error', (e) => { log += `\nspawn: ${e.message}`; });

  /** {serverName: 'UP' | 'DOWN' | 'MAINT' | ...} of the backend, from `show stat`. */
  async function status() {
    const csv = await statsCommand(sock, 'show stat');
    const lines = csv.split('\n').filter((l) => l && !l.startsWith('#'));
    const out = {};
    for (const l of lines) {
      const f = l.split(',');
      if (f[0] === 'nodes' && f[1] !== 'BACKEND') out[f[1]] = f[17];
    }
    return out;
  }

  async function waitStatus(pred, timeoutMs = 20_000, what = 'the expected server states') {
    const end = Date.now() + timeoutMs;
    let last = null;
    for (;;) {
      if (info) throw new Error(`haproxy exited (${info.code ?? info.signal}):\n${log.slice(-2000)}`);
      try { last = await status(); if (pred(last)) return last; } catch (e) { last = e.message; }
      if (Date.now() > end) throw new Error(`haproxy: ${what} not reached within ${timeoutMs} ms (last ${JSON.stringify(last)})`);
      await sleep(50);
    }
  }

  try {
    await waitStatus((s) => nodes.every((n) => s[n.nodeId] === 'UP'), 20_000, 'every node UP');
  } catch (e) {
    child.kill('SIGKILL');
    rmSync(dir, { recursive: true, force: true });
    throw e;
  }

  return {
    port,
    relayUrl: `ws://127.0.0.1:${port}/v1/relay`,
    status,
    waitStatus,
    log: () => log,
    async stop() {
      if (!info) child.kill('SIGTERM');
      const timer = setTimeout(() => { if (!info) child.kill('SIGKILL'); }, 5000);
      await exited;
      clearTimeout(timer);
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
