// Nothing secret at rest in plain text: after creating an API key, a session and an agent token
// with an Idempotency-Key, a dump of the whole database (pg_dump, every table, every column) holds
// neither the key's secret, nor the visitor token, nor the agent token, nor the Idempotency-Key;
// and the replays still answer the same.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { api, expectStatus, newReseller } from './lib/client.mjs';
import { DATABASE_URL } from './lib/db.mjs';

const skip = DATABASE_URL ? false : 'DATABASE_URL is not set (scripts/test.sh sets it)';

function pgDump() {
  return new Promise((resolve, reject) => {
    execFile('pg_dump', ['--data-only', '--no-owner', DATABASE_URL], { maxBuffer: 512 << 20, timeout: 60_000 },
      (err, stdout, stderr) => (err ? reject(new Error(`${err.message}\n${stderr}`)) : resolve(stdout)));
  });
}

async function twice(method, path, opts) {
  const idempotencyKey = randomUUID();
  const first = await api(method, path, { ...opts, idempotencyKey });
  const again = await api(method, path, { ...opts, idempotencyKey });
  assert.equal(again.headers.get('idempotent-replayed'), 'true', `${path}: the second answer is a replay`);
  assert.equal(again.status, first.status);
  assert.deepEqual(again.body, first.body, `${path}: the replay answers the same`);
  return { body: first.body, idempotencyKey };
}

test('a database dump holds no secret, token or Idempotency-Key; replays answer the same', { skip }, async () => {
  const r = await newReseller();
  const key = await twice('POST', '/v1/api_keys', { token: r.secret, tenant: r.tenant.id, body: { type: 'secret', name: 'at-rest' } });
  expectStatus({ status: 201, body: key.body }, 201);
  assert.match(key.body.secret, /^sk_/);
  const session = await twice('POST', '/v1/sessions', { token: key.body.secret, body: {} });
  assert.ok(session.body.visitor_token);
  const agent = await twice('POST', `/v1/sessions/${session.body.id}/agent_tokens`,
    { token: key.body.secret, body: { agent: { id: 'agent-at-rest', name: 'A' } } });
  assert.ok(agent.body.token);

  const dump = await pgDump();
  assert.ok(dump.includes(session.body.id), 'the dump is of the server\'s database');
  const secrets = {
    'API key secret': key.body.secret,
    'visitor token': session.body.visitor_token,
    'agent token': agent.body.token,
    'JWT signature of the visitor token': session.body.visitor_token.split('.')[2],
  };
  for (const [what, value] of Object.entries(secrets)) {
    assert.ok(!dump.includes(value), `the dump holds the ${what} in plain text`);
  }
  for (const k of [key.idempotencyKey, session.idempotencyKey, agent.idempotencyKey]) {
    assert.ok(!dump.includes(k), 'the dump holds an Idempotency-Key');
  }
});

test('a replay needs the same Idempotency-Key: another key runs the request again', { skip }, async () => {
  const r = await newReseller();
  const a = await api('POST', '/v1/api_keys', { token: r.secret, tenant: r.tenant.id, body: { type: 'secret' }, idempotencyKey: randomUUID() });
  const b = await api('POST', '/v1/api_keys', { token: r.secret, tenant: r.tenant.id, body: { type: 'secret' }, idempotencyKey: randomUUID() });
  expectStatus(a, 201);
  expectStatus(b, 201);
  assert.notEqual(a.body.id, b.body.id);
  assert.equal(b.headers.get('idempotent-replayed'), null);
});
