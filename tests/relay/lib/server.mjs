// Starts a private cobrowsed (REST API + relay) for tests that need special relay settings.
//
//   const srv = await startServer({ flags: { 'relay-history-bytes': 65536 } });
//   ... srv.baseUrl, srv.relayUrl, srv.adminToken, srv.jwtSecret, srv.pid ...
//   after(() => srv.stop());
//
// A server killed (srv.child.kill('SIGKILL')) can be started again on the same data dir, secrets
// and admin token: startServer({ reuse: srv, flags }) (new ports; the database is the same).
//
// Nodes of one cluster (tests/cluster/lib/cluster.mjs): startServer({ peer: first, redisUrl,
// nodeId }) shares the first server's JWT and key-hash secrets, data key and admin token (a data
// dir of its own), and adds --redis-url and --node-id.
//
// Every server gets free ports, a temp data dir and secrets of its own (COBROWSE_JWT_SECRET and
// COBROWSE_KEY_HASH_SECRET are generated here and given to both `create-admin-token` and `serve`,
// so the test knows the JWT secret and can sign tokens the relay must refuse for other reasons
// than the signature). All servers share the PostgreSQL of $DATABASE_URL.
//
// Environment: COBROWSED (binary; default build/cobrowsed of this checkout), DATABASE_URL.

import { spawn, execFile } from 'node:child_process';
import { mkdtempSync, rmSync, existsSync, readFileSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { tmpdir } from 'node:os';
import net from 'node:net';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

export const COBROWSED = process.env.COBROWSED ||
  fileURLToPath(new URL('../../../build/cobrowsed', import.meta.url));

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/** A TCP port nobody listens on right now (bind to 0, read it, close). */
export function freePort() {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.unref();
    s.on('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address();
      s.close(() => resolve(port));
    });
  });
}

function tcpOpen(port) {
  return new Promise((resolve) => {
    const s = net.connect({ host: '127.0.0.1', port });
    s.once('connect', () => { s.destroy(); resolve(true); });
    s.once('error', () => resolve(false));
  });
}

function run(cmd, args, env) {
  return new Promise((resolve, reject) => {
    execFile(cmd, args, { env, timeout: 60_000 }, (err, stdout, stderr) => {
      if (err) {
        err.message += `\nstderr: ${stderr}`;
        reject(err);
      } else resolve({ stdout, stderr });
    });
  });
}

/** Sanitizer reports in a server log (the binary of scripts/test.sh is built with ASan/UBSan). */
export function sanitizerErrors(log) {
  const m = log.match(/ERROR: (Address|Leak)Sanitizer[\s\S]{0,3000}|runtime error:[^\n]*/);
  return m ? m[0] : null;
}

/**
 * startServer({flags, env, name}) -> {baseUrl, relayUrl, proxyUrl, adminToken, jwtSecret, pid, dataDir,
 * stop(), log(), exited}
 *
 * flags: extra `serve` flags, {name: value} (value true for a bare flag), e.g.
 *        {'relay-queue-bytes': 1 << 20}. --listen, --relay-listen, --relay-url and --proxy-listen are set here.
 * env:   extra environment for the server (e.g. ASAN_OPTIONS).
 * reuse: a previous startServer() result whose process has exited: its data dir, secrets and
 *        admin token are used again (its data dir then belongs to the new server's stop()).
 * peer:  a running startServer() result: its secrets, data key and admin token are shared (the
 *        new server is another node of the same platform; its data dir is its own).
 * redisUrl, nodeId: --redis-url and --node-id (docs/cluster.md).
 */
export async function startServer({
  flags = {}, env: extraEnv = {}, name = 'relay-test', reuse = null, peer = null, redisUrl = null, nodeId = null,
} = {}) {
  const same = reuse || peer;
  if (!process.env.DATABASE_URL) throw new Error('DATABASE_URL must be set (scripts/test.sh sets it)');
  if (!existsSync(COBROWSED)) throw new Error(`cobrowsed binary not found at ${COBROWSED} (set COBROWSED)`);
  const port = await freePort();
  let relayPort = await freePort();
  while (relayPort === port) relayPort = await freePort();
  let proxyPort = await freePort();
  while (proxyPort === port || proxyPort === relayPort) proxyPort = await freePort();
  const dataDir = reuse ? reuse.dataDir : mkdtempSync(path.join(tmpdir(), `cobrowse-${name}-`));
  const jwtSecretHex = same ? same.jwtSecret.toString('hex') : randomBytes(32).toString('hex');
  const keyHashSecretHex = same ? same.keyHashSecretHex : randomBytes(32).toString('hex');
  const env = {
    ...process.env,
    COBROWSE_DATA_DIR: dataDir,
    COBROWSE_JWT_SECRET: jwtSecretHex,
    COBROWSE_KEY_HASH_SECRET: keyHashSecretHex,
    COBROWSE_LOG_LEVEL: process.env.COBROWSE_LOG_LEVEL || 'warn',
    ...extraEnv,
  };
  // The data key seals the secrets the database keeps: the nodes of one platform share it.
  if (peer && !extraEnv.COBROWSE_DATA_KEY) {
    env.COBROWSE_DATA_KEY = peer.dataKeyHex || readFileSync(path.join(peer.dataDir, 'data.key'), 'utf8').trim();
  } else if (reuse && reuse.dataKeyHex && !extraEnv.COBROWSE_DATA_KEY) {
    env.COBROWSE_DATA_KEY = reuse.dataKeyHex;
  }
  const baseUrl = `http://127.0.0.1:${port}`;
  const relayUrl = `ws://127.0.0.1:${relayPort}/v1/relay`;

  let adminToken = same && same.adminToken;
  if (!adminToken) {
    const { stdout } = await run(COBROWSED, ['create-admin-token', '--name', name], env);
    adminToken = stdout.trim();
    if (!/^adm_/.test(adminToken)) throw new Error(`create-admin-token printed ${JSON.stringify(stdout)}`);
  }

  const proxyUrl = `http://127.0.0.1:${proxyPort}`;
  const args = ['serve', '--listen', `127.0.0.1:${port}`, '--relay-listen', `127.0.0.1:${relayPort}`,
    '--relay-url', relayUrl, '--proxy-listen', `127.0.0.1:${proxyPort}`];
  if (redisUrl) args.push('--redis-url', redisUrl);
  if (nodeId) args.push('--node-id', nodeId);
  for (const [k, v] of Object.entries(flags)) {
    if (v === false || v === null || v === undefined) continue;
    args.push(`--${k}`);
    if (v !== true) args.push(String(v));
  }
  const child = spawn(COBROWSED, args, { env, stdio: ['ignore', 'pipe', 'pipe'] });
  let log = '';
  const keep = (d) => { log += d.toString('utf8'); if (log.length > 2_000_000) log = log.slice(-1_000_000); };
  child.stdout.on('data', keep);
  child.stderr.on('data', keep);
  let exitInfo = null;
  const exited = new Promise((resolve) => {
    child.once('exit', (code, signal) => { exitInfo = { code, signal, at: Date.now() }; resolve(exitInfo); });
  });

  const deadline = Date.now() + 60_000;
  for (;;) {
    if (exitInfo) throw new Error(`cobrowsed exited (${exitInfo.code ?? exitInfo.signal}) at start:\n${log.slice(-4000)}`);
    let up = false;
    try {
      const res = await fetch(`${baseUrl}/healthz`);
      up = res.ok;
    } catch { /* not yet */ }
    if (up && await tcpOpen(relayPort)) break;
    if (Date.now() > deadline) {
      child.kill('SIGKILL');
      throw new Error(`cobrowsed did not answer /healthz and the relay port within 60 s:\n${log.slice(-4000)}`);
    }
    await sleep(50);
  }

  let stopping = null;
  /** SIGTERM, then waits for the exit (SIGKILL after timeoutMs). -> {code, signal, ms, log} */
  function stop({ timeoutMs = 20_000, keepDataDir = false } = {}) {
    if (stopping) return stopping;
    stopping = (async () => {
      const t0 = Date.now();
      if (!exitInfo) child.kill('SIGTERM');
      const timer = setTimeout(() => { if (!exitInfo) child.kill('SIGKILL'); }, timeoutMs);
      const info = await exited;
      clearTimeout(timer);
      if (!keepDataDir) rmSync(dataDir, { recursive: true, force: true });
      return { code: info.code, signal: info.signal, ms: info.at - t0, log };
    })();
    return stopping;
  }

  return {
    baseUrl, relayUrl, proxyUrl, adminToken, port, relayPort, proxyPort, dataDir,
    jwtSecret: Buffer.from(jwtSecretHex, 'hex'), keyHashSecretHex, dataKeyHex: env.COBROWSE_DATA_KEY || null,
    redisUrl, nodeId,
    pid: child.pid, child, exited,
    log: () => log,
    stop,
  };
}

/** Asserts a stop() result: exit status 0 and nothing from the sanitizers. */
export function assertCleanExit(res, what = 'cobrowsed') {
  const san = sanitizerErrors(res.log);
  if (san) throw new Error(`${what}: sanitizer report:\n${san}`);
  if (res.code !== 0) {
    throw new Error(`${what}: exit status ${res.code ?? res.signal}, log tail:\n${res.log.slice(-3000)}`);
  }
}

/** VmRSS of a process in bytes (Linux /proc). */
export async function rssBytes(pid) {
  const { readFile } = await import('node:fs/promises');
  const text = await readFile(`/proc/${pid}/status`, 'utf8');
  const m = text.match(/^VmRSS:\s+(\d+)\s+kB/m);
  if (!m) throw new Error(`no VmRSS in /proc/${pid}/status`);
  return Number(m[1]) * 1024;
}
