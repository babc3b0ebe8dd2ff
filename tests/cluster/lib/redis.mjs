// A private redis-server for the cluster tests: a free loopback port, a temp dir of its own, no
// persistence (`--save "" --appendonly no`), so a restart comes back empty, as after a failover to
// a replica that had nothing. Never the system's redis, never port 6379.
//
//   const r = await startRedis();          // r.url: redis://127.0.0.1:<port>
//   await r.command('HGETALL', 'cb:{ses_x}:meta');
//   await r.restart();                     // kill -9, then the same port again, empty
//   after(() => r.stop());
//
// Environment: REDIS_SERVER (binary; default redis-server on PATH).

import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import net from 'node:net';
import path from 'node:path';
import { freePort } from '../../relay/lib/server.mjs';

const REDIS_SERVER = process.env.REDIS_SERVER || 'redis-server';
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

// ---------------------------------------------------------------------------------------------
// A minimal RESP2 client: one command per connection, enough for a test to look at keys.

function encode(args) {
  const parts = [`*${args.length}\r\n`];
  for (const a of args) {
    const b = Buffer.isBuffer(a) ? a : Buffer.from(String(a), 'utf8');
    parts.push(`$${b.length}\r\n`, b, '\r\n');
  }
  return Buffer.concat(parts.map((p) => (Buffer.isBuffer(p) ? p : Buffer.from(p, 'utf8'))));
}

/** Parses one RESP2 value at buf[i]; -> {value, next} or null when incomplete. */
function parse(buf, i = 0) {
  const eol = buf.indexOf('\r\n', i);
  if (eol < 0) return null;
  const type = String.fromCharCode(buf[i]);
  const line = buf.toString('utf8', i + 1, eol);
  const after = eol + 2;
  if (type === '+') return { value: line, next: after };
  if (type === '-') return { value: new Error(line), next: after };
  if (type === ':') return { value: Number(line), next: after };
  if (type === '$') {
    const n = Number(line);
    if (n < 0) return { value: null, next: after };
    if (buf.length < after + n + 2) return null;
    return { value: buf.toString('utf8', after, after + n), next: after + n + 2 };
  }
  if (type === '*') {
    const n = Number(line);
    if (n < 0) return { value: null, next: after };
    const out = [];
    let k = after;
    for (let j = 0; j < n; j++) {
      const r = parse(buf, k);
      if (!r) return null;
      out.push(r.value);
      k = r.next;
    }
    return { value: out, next: k };
  }
  throw new Error(`unexpected RESP type ${JSON.stringify(type)}`);
}

/** redisCommand(port, ...args) -> the reply (an Error reply rejects). */
export function redisCommand(port, ...args) {
  return new Promise((resolve, reject) => {
    const s = net.connect({ host: '127.0.0.1', port });
    let buf = Buffer.alloc(0);
    const timer = setTimeout(() => { s.destroy(); reject(new Error(`redis ${args[0]}: no answer within 5 s`)); }, 5000);
    s.once('connect', () => s.write(encode(args)));
    s.on('data', (d) => {
      buf = Buffer.concat([buf, d]);
      let r;
      try { r = parse(buf); } catch (e) { clearTimeout(timer); s.destroy(); reject(e); return; }
      if (!r) return;
      clearTimeout(timer);
      s.end();
      if (r.value instanceof Error) reject(r.value);
      else resolve(r.value);
    });
    s.once('error', (e) => { clearTimeout(timer); reject(e); });
  });
}

// ---------------------------------------------------------------------------------------------
// The server

/**
 * startRedis() -> {url, port, dir, pid, command(...args), ping(), kill(), start(), restart(),
 * stop(), log()}
 */
export async function startRedis({ name = 'cluster' } = {}) {
  const dir = mkdtempSync(path.join(tmpdir(), `cobrowse-redis-${name}-`));
  const port = await freePort();
  let child = null;
  let exited = null;
  let log = '';

  async function start() {
    const args = ['--port', String(port), '--bind', '127.0.0.1', '--dir', dir, '--save', '',
      '--appendonly', 'no', '--daemonize', 'no', '--protected-mode', 'yes', '--loglevel', 'warning'];
    child = spawn(REDIS_SERVER, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    const keep = (d) => { log += d.toString('utf8'); if (log.length > 200_000) log = log.slice(-100_000); };
    child.stdout.on('data', keep);
    child.stderr.on('data', keep);
    let info = null;
    exited = new Promise((resolve) => child.once('exit', (code, signal) => { info = { code, signal }; resolve(info); }));
    child.once('error', (e) => { log += `\nspawn: ${e.message}`; });
    const deadline = Date.now() + 20_000;
    for (;;) {
      if (info) throw new Error(`redis-server exited (${info.code ?? info.signal}) at start:\n${log.slice(-2000)}`);
      try { if (await redisCommand(port, 'PING') === 'PONG') break; } catch { /* not yet */ }
      if (Date.now() > deadline) throw new Error(`redis-server did not answer PING within 20 s:\n${log.slice(-2000)}`);
      await sleep(20);
    }
    api.pid = child.pid;
  }

  /** kill -9: the server is gone at once, with everything it held. */
  async function kill() {
    if (!child) return;
    const c = child;
    child = null;
    c.kill('SIGKILL');
    await exited;
  }

  const api = {
    url: `redis://127.0.0.1:${port}`,
    port,
    dir,
    pid: null,
    command: (...args) => redisCommand(port, ...args),
    ping: () => redisCommand(port, 'PING'),
    kill,
    start,
    /** kill -9, then start again on the same port: empty (no persistence). */
    async restart() { await kill(); await start(); },
    async stop() { await kill(); rmSync(dir, { recursive: true, force: true }); },
    log: () => log,
  };
  await start();
  return api;
}
