// GET /v1/usage (docs/billing.md): figures computed from sessions and participants written with
// known times through SQL (exact minutes, period boundaries), day against month totals, CSV
// against JSON, isolation between tenants, the range's bounds and the scope.
import { test, before } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import {
  api, ALL_SCOPES, expectStatus, expectProblem, newReseller, newSubTenant, newKey, newSession,
} from './lib/client.mjs';
import { DATABASE_URL, sql } from './lib/db.mjs';
import { connectVisitor, connectAgent } from '../relay/lib/relay.mjs';
import { eventually } from '../relay/lib/platform.mjs';

const SCOPES = [...ALL_SCOPES];
const skip = DATABASE_URL ? false : 'DATABASE_URL is not set (scripts/test.sh exports it)';
let reseller, resellerKey, sub, subKey, other, otherKey;

const sid = () => `ses_usage${randomBytes(8).toString('hex')}`;
const code = () => String(100000 + Math.floor(Math.random() * 900000));

// A session with known times; agents: [[joined, left|null], ...]. Times are ISO strings.
// A visitor participant is written too when the session started: its time is not agent time.
async function insertSession(tenant, { created, started, ended = null, agents = [] }) {
  const id = sid();
  await sql(`INSERT INTO sessions (id, tenant_id, status, join_code, visitor, permissions,
      created_at, started_at, ended_at, expires_at)
    VALUES (:'p1', :'p2', CASE WHEN :'p5' = '' THEN 'active' ELSE 'ended' END, :'p6', '{}', '{}',
      :'p3', NULLIF(:'p4', '')::timestamptz, NULLIF(:'p5', '')::timestamptz, now() + interval '1 day')`,
  id, tenant, created, started ?? '', ended ?? '', code());
  if (started) {
    await sql(`INSERT INTO participants (id, session_id, tenant_id, role, joined_at, left_at)
      VALUES (:'p1', :'p2', :'p3', 'visitor', :'p4', NULLIF(:'p5', '')::timestamptz)`,
    `par_usage${randomBytes(8).toString('hex')}`, id, tenant, started, ended ?? '');
  }
  for (const [joined, left] of agents) {
    await sql(`INSERT INTO participants (id, session_id, tenant_id, role, external_id, joined_at, left_at)
      VALUES (:'p1', :'p2', :'p3', 'agent', 'agent-1', :'p4', NULLIF(:'p5', '')::timestamptz)`,
    `par_usage${randomBytes(8).toString('hex')}`, id, tenant, joined, left ?? '');
  }
  return id;
}

const usage = (token, query, opts = {}) => api('GET', `/v1/usage?${query}`, { token, ...opts });

before(async () => {
  if (skip) return;
  reseller = await newReseller();
  // Keys of the admin's making, as a partner's first usage:read key is (older keys lack it).
  const adminToken = process.env.COBROWSE_ADMIN_TOKEN;
  resellerKey = (await newKey(adminToken, reseller.tenant.id, { scopes: SCOPES })).secret;
  sub = await newSubTenant(reseller.secret, {}, { withKey: false });
  subKey = (await newKey(adminToken, sub.tenant.id, { scopes: SCOPES })).secret;
  other = await newReseller();
  otherKey = (await newKey(adminToken, other.tenant.id, { scopes: SCOPES })).secret;

  // Reseller: a session across midnight 2025-01-31 -> 2025-02-01 (30 + 45 min), one agent across
  // it (20 + 10 min) and one whose left_at is missing (clipped at the session's end: 10 + 45).
  await insertSession(reseller.tenant.id, {
    created: '2025-01-31T23:20:00Z', started: '2025-01-31T23:30:00Z', ended: '2025-02-01T00:45:00Z',
    agents: [['2025-01-31T23:40:00Z', '2025-02-01T00:10:00Z'], ['2025-01-31T23:50:00Z', null]],
  });
  // Created but never started: counts as a session, no minutes.
  await insertSession(reseller.tenant.id, {
    created: '2025-02-10T08:00:00Z', started: null, ended: '2025-02-10T09:00:00Z',
  });
  // Sub-tenant: 30 min on 2025-02-01 with an agent for 12.5 min.
  await insertSession(sub.tenant.id, {
    created: '2025-02-01T10:00:00Z', started: '2025-02-01T10:00:00Z', ended: '2025-02-01T10:30:00Z',
    agents: [['2025-02-01T10:05:00Z', '2025-02-01T10:17:30Z']],
  });
  // Another tenant, same days: must never appear.
  await insertSession(other.tenant.id, {
    created: '2025-02-01T10:00:00Z', started: '2025-02-01T10:00:00Z', ended: '2025-02-01T11:00:00Z',
  });
});

const byTenant = (rows, tenant) => rows.filter((r) => r.tenant_id === tenant);

test('exact figures per day: a midnight splits a session and its agents between two days', { skip }, async () => {
  const b = expectStatus(await usage(resellerKey, 'from=2025-01-01&to=2025-02-28&granularity=day'), 200);
  assert.equal(b.object, 'usage');
  assert.equal(b.tenant_id, reseller.tenant.id);
  const mine = byTenant(b.data, reseller.tenant.id);
  assert.deepEqual(mine.map((r) => [r.period, r.sessions, r.active_sessions, r.session_minutes, r.agent_minutes]), [
    ['2025-01-31', 1, 1, 30, 30],
    ['2025-02-01', 0, 1, 45, 55],
    ['2025-02-10', 1, 0, 0, 0],
  ]);
  assert.equal(mine[0].period_start, '2025-01-31T00:00:00Z');
  assert.equal(mine[0].period_end, '2025-02-01T00:00:00Z');
  const s = byTenant(b.data, sub.tenant.id);
  assert.deepEqual(s.map((r) => [r.period, r.sessions, r.session_minutes, r.agent_minutes]), [['2025-02-01', 1, 30, 12.5]]);
  assert.deepEqual(byTenant(b.data, other.tenant.id), [], 'another tenant never appears');
});

test('day rows add up to the month rows; a range clips its months', { skip }, async () => {
  const days = expectStatus(await usage(resellerKey, 'from=2025-01-01&to=2025-02-28&granularity=day'), 200).data;
  const months = expectStatus(await usage(resellerKey, 'from=2025-01-01&to=2025-02-28&granularity=month'), 200).data;
  assert.deepEqual(months.filter((r) => r.tenant_id === reseller.tenant.id).map((r) => [r.period, r.sessions, r.active_sessions, r.session_minutes, r.agent_minutes]), [
    ['2025-01', 1, 1, 30, 30],
    ['2025-02', 1, 1, 45, 55],
  ]);
  for (const m of months) {
    const inMonth = days.filter((d) => d.tenant_id === m.tenant_id && d.period.startsWith(m.period));
    const sum = (k) => inMonth.reduce((a, d) => a + d[k], 0);
    assert.equal(sum('sessions'), m.sessions, `${m.tenant_id} ${m.period} sessions`);
    assert.ok(Math.abs(sum('session_minutes') - m.session_minutes) < 0.005 * inMonth.length + 1e-9);
    assert.ok(Math.abs(sum('agent_minutes') - m.agent_minutes) < 0.005 * inMonth.length + 1e-9);
  }
  // A range ending at the first day of February keeps only that day of the session's February part.
  const clip = expectStatus(await usage(resellerKey, 'from=2025-01-15&to=2025-02-01&granularity=month'), 200).data;
  const feb = clip.find((r) => r.tenant_id === reseller.tenant.id && r.period === '2025-02');
  assert.equal(feb.period_start, '2025-02-01T00:00:00Z');
  assert.equal(feb.period_end, '2025-02-02T00:00:00Z');
  const jan = clip.find((r) => r.tenant_id === reseller.tenant.id && r.period === '2025-01');
  assert.equal(jan.period_start, '2025-01-15T00:00:00Z');
  // A range starting after the session did counts only its part inside the range.
  const one = expectStatus(await usage(resellerKey, 'from=2025-02-01&to=2025-02-01'), 200).data;
  assert.deepEqual(one.filter((r) => r.tenant_id === reseller.tenant.id).map((r) => [r.period, r.sessions, r.active_sessions, r.session_minutes, r.agent_minutes]), [
    ['2025-02-01', 0, 1, 45, 55],
  ]);
});

test('CSV (Accept or format=csv) holds the same rows as JSON, with a header row', { skip }, async () => {
  const q = 'from=2025-01-01&to=2025-02-28&granularity=day';
  const json = expectStatus(await usage(resellerKey, q), 200).data;
  for (const res of [await usage(resellerKey, q, { headers: { accept: 'text/csv' } }),
    await usage(resellerKey, `${q}&format=csv`)]) {
    assert.equal(res.status, 200);
    assert.match(res.contentType, /^text\/csv/);
    const lines = res.text.split('\r\n');
    assert.equal(lines.pop(), '', 'the last record ends with CRLF');
    const header = lines.shift().split(',');
    assert.deepEqual(header, ['tenant_id', 'period', 'period_start', 'period_end', 'sessions', 'active_sessions', 'session_minutes', 'agent_minutes']);
    const rows = lines.map((l) => Object.fromEntries(l.split(',').map((v, i) => [header[i], i >= 4 ? Number(v) : v])));
    assert.deepEqual(rows, json);
  }
  // format=json wins over Accept.
  const j = await usage(resellerKey, `${q}&format=json`, { headers: { accept: 'text/csv' } });
  assert.deepEqual(expectStatus(j, 200).data, json);
});

test('isolation: a sub-tenant sees only its own usage, the reseller may act for it, others never see it', { skip }, async () => {
  const q = 'from=2025-01-01&to=2025-02-28';
  const own = expectStatus(await usage(subKey, q), 200).data;
  assert.deepEqual([...new Set(own.map((r) => r.tenant_id))], [sub.tenant.id]);
  const acting = expectStatus(await usage(resellerKey, q, { tenant: sub.tenant.id }), 200).data;
  assert.deepEqual(acting, own);
  const theirs = expectStatus(await usage(otherKey, q), 200).data;
  assert.deepEqual([...new Set(theirs.map((r) => r.tenant_id))], [other.tenant.id]);
  expectProblem(await usage(otherKey, q, { tenant: reseller.tenant.id }), 404, 'not_found');
  expectProblem(await usage(otherKey, q, { tenant: sub.tenant.id }), 404, 'not_found');
  expectProblem(await usage(subKey, q, { tenant: reseller.tenant.id }), 404, 'not_found');
});

test('bad ranges answer 400 naming the parameter', { skip }, async () => {
  const cases = [
    ['to=2025-01-31', 'from'],
    ['from=2025-01-01', 'to'],
    ['from=2025-1-01&to=2025-01-31', 'from'],
    ['from=2025-02-29&to=2025-03-01', 'from'],
    ['from=2025-02-01&to=2025-01-31', 'to'],
    ['from=2024-01-01&to=2025-01-01', 'to'], // 367 days
    ['from=2022-01-01&to=2025-01-31&granularity=month', 'to'], // 37 months
    ['from=2025-01-01&to=2025-01-31&granularity=week', 'granularity'],
    ['from=2025-01-01&to=2025-01-31&format=xml', 'format'],
    ['from=2025-01-01&to=2025-01-31&tenant=x', 'tenant'],
  ];
  for (const [q, field] of cases) {
    const p = expectProblem(await usage(resellerKey, q), 400, 'invalid_parameter', field, q);
    assert.ok(p.detail.length > 10, q);
  }
  expectStatus(await usage(resellerKey, 'from=2024-01-01&to=2024-12-31'), 200, '366 days of a leap year');
  expectStatus(await usage(resellerKey, 'from=2022-01-01&to=2024-12-31&granularity=month'), 200, '36 months');
});

test('scope: usage:read is needed', { skip }, async () => {
  const without = await newKey(resellerKey, null, { scopes: ['sessions:read'] });
  expectProblem(await usage(without.secret, 'from=2025-01-01&to=2025-01-31'), 403, 'insufficient_scope');
});

test('live sessions and agents still present count up to now; sessions created through the API count', { skip }, async () => {
  const t = await newReseller();
  const key = (await newKey(process.env.COBROWSE_ADMIN_TOKEN, t.tenant.id, { scopes: SCOPES })).secret;
  await newSession(key);
  const row = await sql(`SELECT to_char(now() - interval '2 hours', 'YYYY-MM-DD"T"HH24:MI:SS"Z"'),
    to_char((now() AT TIME ZONE 'UTC')::date - 1, 'YYYY-MM-DD'), to_char((now() AT TIME ZONE 'UTC')::date, 'YYYY-MM-DD')`);
  const [twoHoursAgo, yesterday, today] = row[0];
  await insertSession(t.tenant.id, { created: twoHoursAgo, started: twoHoursAgo, agents: [[twoHoursAgo, null]] });
  const rows = expectStatus(await usage(key, `from=${yesterday}&to=${today}`), 200).data;
  const sum = (k) => rows.reduce((a, r) => a + r[k], 0);
  assert.equal(sum('sessions'), 2, 'the API-created session and the live one');
  assert.ok(sum('session_minutes') >= 120, `live session counted to now: ${sum('session_minutes')}`);
  assert.ok(sum('agent_minutes') >= 120, `present agent counted to now: ${sum('agent_minutes')}`);
});

test('a session run through the relay: its minutes and its agent\'s match what the relay recorded', { skip: skip || (!process.env.COBROWSE_RELAY_URL && 'COBROWSE_RELAY_URL is not set') }, async () => {
  const adminToken = process.env.COBROWSE_ADMIN_TOKEN;
  const t = await newReseller();
  const key = (await newKey(adminToken, t.tenant.id, { scopes: SCOPES })).secret;
  const s = await newSession(key, { visitor: { external_id: 'v1' } });
  const tok = expectStatus(await api('POST', `/v1/sessions/${s.id}/agent_tokens`, { token: key, body: { agent: { id: 'bob', name: 'Bob' } } }), 201);
  const relay = process.env.COBROWSE_RELAY_URL;
  const v = await connectVisitor(relay, s.visitor_token);
  const a = await connectAgent(relay, tok.token);
  try {
    const [today] = (await sql(`SELECT to_char(now() AT TIME ZONE 'UTC', 'YYYY-MM-DD')`))[0];
    const [yesterday] = (await sql(`SELECT to_char((now() AT TIME ZONE 'UTC')::date - 1, 'YYYY-MM-DD')`))[0];
    const q = `from=${yesterday}&to=${today}&granularity=month`;
    // Live: the session and the agent (written by the relay's worker) count while they last.
    await eventually(async () => {
      const d = expectStatus(await usage(key, q), 200).data;
      return d.length === 1 && d[0].active_sessions === 1 && d[0].agent_minutes > 0;
    }, 10_000, 'the live session and its agent in the usage');
  } finally {
    a.close();
    v.close();
  }
  expectStatus(await api('POST', `/v1/sessions/${s.id}/end`, { token: key }), 200);
  const [[sessionMin, agentMin, from, to]] = await sql(`SELECT
      round(EXTRACT(EPOCH FROM s.ended_at - s.started_at) / 60, 2),
      round((SELECT sum(EXTRACT(EPOCH FROM p.left_at - p.joined_at)) FROM participants p
             WHERE p.session_id = s.id AND p.role = 'agent') / 60, 2),
      to_char(s.started_at AT TIME ZONE 'UTC', 'YYYY-MM-DD'), to_char(s.ended_at AT TIME ZONE 'UTC', 'YYYY-MM-DD')
    FROM sessions s WHERE s.id = :'p1'`, s.id);
  // One month row over the session's days: the whole session, however the days split it.
  const d = expectStatus(await usage(key, `from=${from}&to=${to}&granularity=month`), 200).data;
  const sum = (k) => d.reduce((acc, r) => acc + r[k], 0);
  assert.equal(sum('sessions'), 1);
  assert.ok(Math.abs(sum('session_minutes') - Number(sessionMin)) <= 0.01 * d.length, `${sum('session_minutes')} vs ${sessionMin}`);
  assert.ok(Math.abs(sum('agent_minutes') - Number(agentMin)) <= 0.01 * d.length, `${sum('agent_minutes')} vs ${agentMin}`);
  assert.ok(Number(agentMin) > 0);
});
