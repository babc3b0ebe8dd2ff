// /metrics behind a scrape token (COBROWSE_METRICS_TOKEN): this file starts its
// own server with one and checks that only requests bearing it get the metrics. The server of
// scripts/test.sh has none, so there /metrics answers loopback clients (conventions.test.mjs);
// the address rule itself is unit-tested (tests/unit/api/metrics_test.c).

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { api, expectStatus, expectProblem } from './lib/client.mjs';
import { startServer, assertCleanExit } from '../relay/lib/server.mjs';

const TOKEN = randomBytes(24).toString('base64url');
let srv;

before(async () => {
  srv = await startServer({ name: 'metrics-token', env: { COBROWSE_METRICS_TOKEN: TOKEN } });
});

after(async () => {
  if (srv) assertCleanExit(await srv.stop(), 'cobrowsed (metrics-token)');
});

const metrics = (headers) => api('GET', `${srv.baseUrl}/metrics`, { headers });

test('GET /metrics without the scrape token is 401 missing_metrics_token, even from loopback', async () => {
  const res = await metrics({});
  expectProblem(res, 401, 'missing_metrics_token');
  assert.match(res.headers.get('www-authenticate') || '', /^Bearer /, 'WWW-Authenticate: Bearer');
  assert.ok(!res.text.includes('http_requests_total'), 'no metric in the refusal');
});

test('GET /metrics with another bearer token is 401 invalid_metrics_token', async () => {
  for (const wrong of [`${TOKEN}x`, TOKEN.slice(0, -1), 'x'.repeat(TOKEN.length), srv.adminToken]) {
    expectProblem(await metrics({ authorization: `Bearer ${wrong}` }), 401, 'invalid_metrics_token');
  }
  expectProblem(await metrics({ authorization: `Basic ${TOKEN}` }), 401, 'missing_metrics_token');
});

test('GET /metrics with the scrape token is 200 with the metrics', async () => {
  const res = await metrics({ authorization: `Bearer ${TOKEN}` });
  expectStatus(res, 200, '/metrics with the token');
  assert.match(res.contentType, /^text\/plain/);
  assert.ok(res.text.includes('http_requests_total'), 'the metrics are there');
  // The refusals above were counted like any answer.
  assert.match(res.text, /http_requests_total\{route="\/metrics",method="GET",status="401"\} [1-9]/);
});

test('the scrape token does not open other routes', async () => {
  expectProblem(await api('GET', `${srv.baseUrl}/v1/tenants`, { token: TOKEN }), 401, 'invalid_api_key');
});
