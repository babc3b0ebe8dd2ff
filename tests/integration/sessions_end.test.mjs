// Ending a session means the same thing on every path (sessions_end in migrations/003): the
// status, ended_at and end_reason change, and the participants the relay recorded are marked as
// gone. Here: the API, the token route, tenant suspension and tenant deletion.

import { test, before } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { api, expectStatus, newReseller, newSubTenant, newSession, ADMIN_TOKEN } from './lib/client.mjs';
import { sql, DATABASE_URL } from './lib/db.mjs';

const skip = DATABASE_URL ? false : 'DATABASE_URL is not set (scripts/test.sh sets it)';
let R;

before(async () => {
  if (skip) return;
  R = await newReseller();
});

/* What the relay's worker writes when a visitor and an agent join (core/relay/relay_worker.c). */
async function joinParticipants(session) {
  for (const role of ['visitor', 'agent']) {
    const id = `par_${randomBytes(13).toString('hex').slice(0, 26)}`;
    await sql(`INSERT INTO participants (id, session_id, tenant_id, role) VALUES (:'p1', :'p2', :'p3', :'p4')`,
      id, session.id, session.tenant_id, role);
  }
}

async function assertEnded(session, reason) {
  const [[status, endReason, endedAt]] = await sql(
    `SELECT status, end_reason, ended_at IS NOT NULL FROM sessions WHERE id = :'p1'`, session.id);
  assert.deepEqual([status, endReason, endedAt], ['ended', reason, 't'], `session ${session.id}`);
  const open = await sql(`SELECT role FROM participants WHERE session_id = :'p1' AND left_at IS NULL`, session.id);
  assert.deepEqual(open, [], `participants of a session ended by ${reason} have left`);
}

test('POST /v1/sessions/{id}/end closes the participants', { skip }, async () => {
  const s = await newSession(R.secret);
  await joinParticipants(s);
  expectStatus(await api('POST', `/v1/sessions/${s.id}/end`, { token: R.secret }), 200);
  await assertEnded(s, 'ended_by_api');
});

test('POST /v1/token/session/end closes the participants', { skip }, async () => {
  const s = await newSession(R.secret);
  await joinParticipants(s);
  expectStatus(await api('POST', '/v1/token/session/end', { token: s.visitor_token }), 200);
  await assertEnded(s, 'ended_by_visitor');
});

test('suspending a tenant ends its sessions and closes their participants', { skip }, async () => {
  const sub = await newSubTenant(R.secret);
  const s = await newSession(sub.secret);
  await joinParticipants(s);
  expectStatus(await api('POST', `/v1/tenants/${sub.tenant.id}/suspend`, { token: R.secret }), 200);
  await assertEnded(s, 'tenant_suspended');
});

test('deleting a tenant ends its sessions and closes their participants', { skip }, async () => {
  const sub = await newSubTenant(R.secret);
  const s = await newSession(sub.secret);
  await joinParticipants(s);
  expectStatus(await api('DELETE', `/v1/tenants/${sub.tenant.id}`, { token: ADMIN_TOKEN }), 200);
  await assertEnded(s, 'tenant_deleted');
});
