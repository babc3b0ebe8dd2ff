// After its LISTEN connection comes back (a PostgreSQL restart, a failover, a killed backend), the
// relay reloads the sessions that ended meanwhile (docs/protocol.md "Lifecycle"): a NOTIFY sent
// while nobody listened is lost, and without the reload the session would keep relaying and its
// tokens would be accepted until they expire.
//
// Deterministic window: the server runs as a role of its own in a database of its own (on the
// PostgreSQL of $DATABASE_URL, whose superuser this test is). The test forbids that role to log in
// (open connections stay), terminates the relay's LISTEN backend, ends the session in SQL (its
// NOTIFY reaches nobody), then lets the role log in again.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { connectVisitor, rejection, expectRejection } from './lib/relay.mjs';
import { platform, lit, eventually } from './lib/platform.mjs';
import { startServer, assertCleanExit } from './lib/server.mjs';

const name = `relay_reload_${randomBytes(4).toString('hex')}`;
let srv, P, tenant, url;
const open = new Set();

/** The connection string of $DATABASE_URL with another user and database. */
function withUserDb(base, user, db) {
  // A URI (scripts/lib.sh gives postgresql://app@/cobrowse?host=DIR&port=N, which WHATWG URL
  // refuses: userinfo with an empty host).
  const m = /^(postgres(?:ql)?:\/\/)(?:[^@/?]*@)?([^/?]*)(?:\/[^?]*)?(\?.*)?$/.exec(base);
  if (m) return `${m[1]}${user}@${m[2]}/${db}${m[3] || ''}`;
  return `${base} user=${user} dbname=${db}`; /* libpq: the last value of a keyword wins */
}

function psql(conninfo, query) {
  return new Promise((resolve, reject) => {
    execFile('psql', [conninfo, '-XAtq', '-v', 'ON_ERROR_STOP=1', '-c', query], { timeout: 20_000 },
      (err, stdout, stderr) => (err ? reject(new Error(`${err.message}\n${stderr}`)) : resolve(stdout.trim())));
  });
}
const admin = (q) => psql(process.env.DATABASE_URL, q);
const inDb = (q) => psql(withUserDb(process.env.DATABASE_URL, 'app', name), q);

before(async () => {
  const current = await admin('SELECT current_user');
  await admin(`CREATE ROLE ${name} LOGIN`);
  await admin(`CREATE DATABASE ${name} OWNER ${name}`);
  url = withUserDb(process.env.DATABASE_URL, name, name);
  // inDb() connects as the cluster's superuser (the one of $DATABASE_URL).
  if (current !== 'app') throw new Error(`this test expects the superuser "app", got ${current}`);
  srv = await startServer({ name: 'relay-reload', env: { DATABASE_URL: url } });
  P = platform(srv);
  tenant = await P.tenant();
});

after(async () => {
  for (const c of open) c.terminate();
  if (srv) assertCleanExit(await srv.stop());
  await admin(`ALTER ROLE ${name} LOGIN`).catch(() => {});
  await admin(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
  await admin(`DROP ROLE IF EXISTS ${name}`);
});

test('a session ended while the relay\'s LISTEN connection was down is closed with 4001 once it is back', async () => {
  const s = await P.session(tenant.id);
  const v = await connectVisitor(srv.relayUrl, s.visitor_token);
  open.add(v);
  const listener = `application_name = 'cobrowsed-relay-listen-${srv.pid}'`;
  assert.equal(await inDb(`SELECT count(*) FROM pg_stat_activity WHERE ${listener}`), '1',
    'the relay LISTENs on a connection named after its pid');

  await admin(`ALTER ROLE ${name} NOLOGIN`); // the relay cannot reconnect; open connections stay
  await inDb(`SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE ${listener}`);
  await eventually(async () => (await inDb(`SELECT count(*) FROM pg_stat_activity WHERE ${listener}`)) === '0',
    10_000, 'the LISTEN backend gone');
  await inDb(`UPDATE sessions SET status = 'ended', ended_at = now(), end_reason = 'ended_by_api' ` +
    `WHERE id = ${lit(s.id)}`); // its NOTIFY reaches nobody
  assert.equal(v.closeInfo, null, 'nothing told the relay yet');
  await admin(`ALTER ROLE ${name} LOGIN`);

  await v.waitFor((c) => c.closeInfo, 15_000, 'the visitor closed after the reconnect');
  assert.equal(v.closeInfo.code, 4001);
  expectRejection(await rejection(srv.relayUrl, s.visitor_token), 404, 'session_ended');
});

test('a lifecycle event that happens while the database is away is recorded once it is back (the participant is closed)', async () => {
  const s = await P.session(tenant.id);
  const v = await connectVisitor(srv.relayUrl, s.visitor_token);
  open.add(v);
  const joined = `SELECT count(*) FROM participants WHERE session_id = ${lit(s.id)} AND role = 'visitor'`;
  await eventually(async () => (await inDb(joined)) === '1', 10_000, 'the visitor recorded as a participant');

  await admin(`ALTER ROLE ${name} NOLOGIN`);
  const mine = `usename = '${name}' AND pid <> pg_backend_pid()`;
  await inDb(`SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE ${mine}`);
  await eventually(async () => (await inDb(`SELECT count(*) FROM pg_stat_activity WHERE ${mine}`)) === '0',
    10_000, 'every connection of the server gone');
  v.close(); // "visitor left" while the worker cannot write it
  await v.waitFor((c) => c.closeInfo, 5000, 'the close');
  await admin(`ALTER ROLE ${name} LOGIN`);

  await eventually(async () => (await inDb(`${joined} AND left_at IS NOT NULL`)) === '1', 20_000,
    'the visitor\'s left_at recorded after the database came back');
});
