// Pooled database connections whose backends died (a PostgreSQL restart, a failover, an admin's
// pg_terminate_backend) must cost callers nothing: core/store/db.c resets a connection that
// failed outside a transaction and runs the statement again. This file starts its own server
// whose connections carry an application_name of their own, kills them all, and checks that
// the next requests all succeed.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { api, expectStatus } from './lib/client.mjs';
import { sql, DATABASE_URL } from './lib/db.mjs';
import { startServer, assertCleanExit } from '../relay/lib/server.mjs';

const POOL = 3;
const appName = `cobrowse-reconnect-${randomBytes(4).toString('hex')}`;
let srv;

function withAppName(url, name) {
  if (/^postgres(ql)?:\/\//.test(url)) return `${url}${url.includes('?') ? '&' : '?'}application_name=${name}`;
  return `${url} application_name=${name}`;
}

/** Polls cond() (async) until it is truthy; fails after timeoutMs. */
async function waitFor(cond, what, timeoutMs = 20_000) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await cond();
    if (v) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

before(async () => {
  assert.ok(DATABASE_URL, 'DATABASE_URL must be set (scripts/test.sh exports it)');
  srv = await startServer({
    name: 'db-reconnect',
    // key-cache-seconds 0: every request looks its key up, so every request uses the pool.
    flags: { 'db-pool-size': POOL, 'http-threads': POOL, 'key-cache-seconds': 0 },
    // info: the test reads the server's "database connection reset" lines.
    env: { DATABASE_URL: withAppName(DATABASE_URL, appName), COBROWSE_LOG_LEVEL: 'info' },
  });
});

after(async () => {
  if (srv) assertCleanExit(await srv.stop(), 'cobrowsed (db-reconnect)');
});

const calls = () => [
  ['GET', '/readyz', {}],
  ['GET', '/v1/tenants?limit=1', { token: srv.adminToken }],
];

test('requests succeed after every pooled connection was terminated', async () => {
  // Every pool connection has been used (and has its statements prepared) before the kill.
  for (let i = 0; i < 2; i++) {
    await Promise.all(Array.from({ length: POOL }, (_, k) => calls()[k % 2]).map(([m, p, o]) =>
      api(m, srv.baseUrl + p, o).then((r) => expectStatus(r, 200, `${m} ${p} before the kill`))));
  }
  const pids = (await sql('SELECT pid FROM pg_stat_activity WHERE application_name = :\'p1\'', appName)).map((r) => r[0]);
  assert.ok(pids.length >= POOL, `the server's ${POOL} pool connections carry application_name (found ${pids.length})`);
  await sql('SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = :\'p1\'', appName);
  const list = pids.join(',');
  await waitFor(async () => (await sql(`SELECT count(*) FROM pg_stat_activity WHERE pid IN (${list})`))[0][0] === '0',
    'the terminated backends to exit');

  // Concurrent waves, so that the requests spread over the pool's connections, then a few more.
  const statuses = [];
  for (let wave = 0; wave < 3; wave++) {
    const res = await Promise.all(Array.from({ length: POOL }, (_, k) => calls()[(k + wave) % 2]).map(([m, p, o]) =>
      api(m, srv.baseUrl + p, o).then((r) => ({ what: `${m} ${p}`, status: r.status, body: r.body }))));
    statuses.push(...res);
  }
  const failed = statuses.filter((s) => s.status !== 200);
  assert.deepEqual(failed, [], 'no request fails after the database connections were terminated');
  assert.match(srv.log(), /database connection reset/, 'the server reset the dead connections');
});
