// scripts/run.sh as a new user meets it: started, then stopped by SIGTERM (a process manager, a
// `kill`) or SIGINT to its process id (what Ctrl-C sends). Either must stop cobrowsed and the
// demo before the script exits, so that no process of it is left and the next run can bind its
// ports. Its output, redirected here, must carry no colour codes and never the admin token.
//
// Environment (scripts/test.sh exports them): DATABASE_URL (run.sh then starts no PostgreSQL of
// its own), COBROWSE_RUN_SH_BUILD (a built tree for COBROWSE_BUILD, default build/asan).

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import net from 'node:net';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const BUILD = process.env.COBROWSE_RUN_SH_BUILD || path.join(ROOT, 'build/asan');
const START_MS = 180_000; // a first run may build the web code
const STOP_MS = 30_000;

function freePort() {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.on('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address();
      s.close(() => resolve(port));
    });
  });
}

/** Resolves true when something can listen on port (nobody holds it), false otherwise. */
function portFree(port) {
  return new Promise((resolve) => {
    const s = net.createServer();
    s.once('error', () => resolve(false));
    s.listen(port, '127.0.0.1', () => s.close(() => resolve(true)));
  });
}

/** Pids of every live process descended from pid (setsid keeps the parent link). */
function descendants(pid) {
  const children = new Map();
  for (const d of readdirSync('/proc')) {
    if (!/^\d+$/.test(d)) continue;
    let stat;
    try { stat = readFileSync(`/proc/${d}/stat`, 'utf8'); } catch { continue; }
    const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
    if (!children.has(ppid)) children.set(ppid, []);
    children.get(ppid).push(Number(d));
  }
  const out = [];
  const walk = (p) => { for (const c of children.get(p) || []) { out.push(c); walk(c); } };
  walk(pid);
  return out;
}

function alive(pid) {
  try {
    process.kill(pid, 0);
  } catch {
    return false;
  }
  // A zombie still answers kill(0): it has exited and only waits for its parent to reap it.
  try { return !/\) Z /.test(readFileSync(`/proc/${pid}/stat`, 'utf8')); } catch { return false; }
}

function commandOf(pid) {
  try { return readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').join(' ').trim(); } catch { return '?'; }
}

async function runAndStop(signal) {
  const [api, relay, proxy, demo] = [await freePort(), await freePort(), await freePort(), await freePort()];
  const data = mkdtempSync(path.join(tmpdir(), 'run-sh-'));
  // Started the way a script or CI starts it in the background (`scripts/run.sh &`): a
  // non-interactive shell gives background jobs SIGINT ignored, and a bash script cannot trap a
  // signal that was ignored when it started. `exec` keeps the pid.
  const child = spawn('bash', ['-c', 'trap "" INT; exec bash "$0"', path.join(ROOT, 'scripts/run.sh')], {
    env: {
      ...process.env,
      COBROWSE_BUILD: BUILD,
      COBROWSE_DATA_DIR: data,
      COBROWSE_LISTEN: `127.0.0.1:${api}`,
      COBROWSE_RELAY_LISTEN: `127.0.0.1:${relay}`,
      COBROWSE_PROXY_LISTEN: `127.0.0.1:${proxy}`,
      COBROWSE_DEMO_LISTEN: `127.0.0.1:${demo}`,
      COBROWSE_LOG_LEVEL: 'warn',
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  let procs = [];
  child.stdout.on('data', (b) => { out += b; });
  child.stderr.on('data', (b) => { out += b; });
  const exited = new Promise((resolve) => child.on('exit', (code, sig) => resolve({ code, sig })));
  try {
    // Ready when the banner is out: both servers answered their health checks by then.
    await new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`run.sh not ready within ${START_MS} ms:\n${out}`)), START_MS);
      const check = () => {
        if (out.includes('Stop with Ctrl-C.')) { clearTimeout(timer); resolve(); }
      };
      child.stdout.on('data', check);
      child.stderr.on('data', check);
      exited.then((e) => { clearTimeout(timer); reject(new Error(`run.sh exited at start (${JSON.stringify(e)}):\n${out}`)); });
      check();
    });
    procs = descendants(child.pid);
    const names = procs.map(commandOf);
    assert.ok(names.some((n) => n.includes('cobrowsed serve')), `cobrowsed runs under run.sh: ${names.join(' | ')}`);
    assert.ok(names.some((n) => n.includes('web/demo/server.mjs')), `the demo runs under run.sh: ${names.join(' | ')}`);

    child.kill(signal);
    const e = await Promise.race([exited, new Promise((r) => setTimeout(() => r(null), STOP_MS).unref())]);
    assert.ok(e, `run.sh still running ${STOP_MS} ms after ${signal}:\n${out}`);
    // Every child was waited for before the script exited: none may be left, not even briefly.
    const left = procs.filter(alive);
    assert.deepEqual(left.map((p) => `${p} ${commandOf(p)}`), [], `processes left after ${signal}`);
    assert.equal(e.code, signal === 'SIGINT' ? 130 : 143, `run.sh exit status after ${signal}`);
    for (const [what, port] of [['API', api], ['relay', relay], ['proxy', proxy], ['demo', demo]]) {
      assert.ok(await portFree(port), `the ${what} port ${port} is free again after ${signal}`);
    }
    assert.ok(!out.includes('\x1b['), `no colour codes in redirected output:\n${JSON.stringify(out.slice(0, 400))}`);
    const token = readFileSync(path.join(data, 'admin-token'), 'utf8').trim();
    assert.match(token, /^adm_/);
    assert.ok(!out.includes(token), 'the admin token is never printed');
    assert.ok(!readFileSync(path.join(data, 'logs/cobrowsed.log'), 'utf8').includes(token), 'nor in the server log');
    assert.match(out, /admin-token/, 'the output says where the token is');
  } finally {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    for (const p of procs.filter(alive)) try { process.kill(p, 'SIGKILL'); } catch { /* gone */ }
    rmSync(data, { recursive: true, force: true });
  }
}

test('SIGTERM to scripts/run.sh stops cobrowsed and the demo, frees the ports, exits 143', () => runAndStop('SIGTERM'));
test('SIGINT to scripts/run.sh (its pid, as a Ctrl-C would) stops everything, exits 130', () => runAndStop('SIGINT'));
