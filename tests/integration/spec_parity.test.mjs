// The server's routes and openapi/openapi.yaml must agree.
//
// env:
//   COBROWSE_PROXY_URL the proxy listener's URL (http://127.0.0.1:PORT), with COBROWSE_BASE_URL
//   COBROWSED          path to the cobrowsed binary; `$COBROWSED routes` prints the route table
//                      as JSON [{"method": "GET", "path": "/v1/tenants/{id}", "operationId": ...}, ...]
//                      (operationId optional; when given it must match the spec's)
//   COBROWSE_BASE_URL  a running server, e.g. http://127.0.0.1:8080
// Each part is skipped (with the reason) when its variable is not set; the spec's own examples
// are always checked against the spec's schemas.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { parse as parseYaml } from 'yaml';
import { specRoutes, checkResponse, SPEC_PATH } from './lib/spec.mjs';

const COBROWSED = process.env.COBROWSED;
const BASE_URL = process.env.COBROWSE_BASE_URL?.replace(/\/+$/, '');
// The proxy listener's URL (scripts/test.sh sets it), for the paths the spec gives servers of their own.
const PROXY_URL = process.env.COBROWSE_PROXY_URL;

const SPEC = parseYaml(readFileSync(SPEC_PATH, 'utf8'));
const key = (r) => `${r.method.toUpperCase()} ${r.path}`;

test('spec: every example in openapi.yaml passes checkResponse for its own route', () => {
  const spec = SPEC;
  const resolve = (o) => {
    while (o && o.$ref) {
      o = o.$ref
        .slice(2)
        .split('/')
        .map((p) => p.replace(/~1/g, '/').replace(/~0/g, '~'))
        .reduce((a, k) => a[k], spec);
    }
    return o;
  };
  let checked = 0;
  const failures = [];
  for (const { method, path } of specRoutes()) {
    const op = spec.paths[path][method.toLowerCase()];
    for (const [status, r] of Object.entries(op.responses)) {
      const response = resolve(r);
      const bodies = [];
      if (!response.content) bodies.push([undefined, undefined]);
      for (const [mt, media] of Object.entries(response.content ?? {})) {
        if (media.examples) for (const ex of Object.values(media.examples)) bodies.push([mt, resolve(ex).value]);
        else if ('example' in media) bodies.push([mt, media.example]);
        else failures.push(`${method} ${path} ${status} ${mt}: no example`);
      }
      for (const [mt, body] of bodies) {
        try {
          checkResponse(method, concretePath(path), Number(status), body, mt);
          checked++;
        } catch (e) {
          failures.push(e.message);
        }
      }
    }
  }
  assert.deepEqual(failures, [], failures.join('\n'));
  assert.ok(checked > 0);
});

test('routes: `cobrowsed routes` and openapi.yaml list the same operations', { skip: !COBROWSED && 'COBROWSED is not set' }, () => {
  let out;
  try {
    out = execFileSync(COBROWSED, ['routes'], { encoding: 'utf8', timeout: 15000, stdio: ['ignore', 'pipe', 'pipe'] });
  } catch (e) {
    assert.fail(`\`${COBROWSED} routes\` failed (${e.status ?? e.code}): ${e.stderr ?? e.message}`);
  }
  let serverRoutes;
  try {
    serverRoutes = JSON.parse(out);
  } catch (e) {
    assert.fail(`\`${COBROWSED} routes\` did not print JSON (${e.message}):\n${out.slice(0, 500)}`);
  }
  assert.ok(Array.isArray(serverRoutes), '`cobrowsed routes` must print a JSON array');
  for (const r of serverRoutes) {
    assert.ok(typeof r?.method === 'string' && typeof r?.path === 'string', `bad route entry ${JSON.stringify(r)}`);
  }

  const server = serverRoutes.map(key);
  const dupes = server.filter((k, i) => server.indexOf(k) !== i);
  const serverSet = new Set(server);
  const specSet = new Set(specRoutes().map(key));
  const notInSpec = [...serverSet].filter((k) => !specSet.has(k)).sort();
  const notInServer = [...specSet].filter((k) => !serverSet.has(k)).sort();

  const lines = [];
  if (notInSpec.length) lines.push(`served but missing from openapi/openapi.yaml (${notInSpec.length}):`, ...notInSpec.map((k) => `  ${k}`));
  if (notInServer.length) lines.push(`in openapi/openapi.yaml but not served (${notInServer.length}):`, ...notInServer.map((k) => `  ${k}`));
  if (dupes.length) lines.push(`listed twice by the server:`, ...[...new Set(dupes)].map((k) => `  ${k}`));
  // The server also names each route's operationId: it must be the spec's.
  const renamed = serverRoutes
    .filter((r) => r.operationId !== undefined && specSet.has(key(r)))
    .map((r) => [r, SPEC.paths[r.path]?.[r.method.toLowerCase()]?.operationId])
    .filter(([r, specId]) => r.operationId !== specId)
    .map(([r, specId]) => `  ${key(r)}: server ${JSON.stringify(r.operationId)}, spec ${JSON.stringify(specId)}`);
  if (renamed.length) lines.push(`operationId differs:`, ...renamed);
  // Routes on the proxy listener (--proxy-listen) are the paths with servers of their own.
  const listener = serverRoutes
    .filter((r) => specSet.has(key(r)))
    .filter((r) => (r.listener === 'proxy') !== Array.isArray(SPEC.paths[r.path]?.servers))
    .map((r) => `  ${key(r)}: served on the ${r.listener ?? 'api'} listener, ${SPEC.paths[r.path]?.servers ? 'but the spec gives its path servers of its own' : 'but the spec gives its path no servers of its own'}`);
  if (listener.length) lines.push(`listener differs:`, ...listener);
  assert.ok(lines.length === 0, 'route table and spec differ\n' + lines.join('\n'));
});

// Dummy values for path parameters: well-formed ids that do not exist.
function concretePath(template) {
  return template.replace(/\/([a-z_]+)\/\{([^}]+)\}/g, (whole, collection, name) => {
    const prefix = { tenants: 'ten_', api_keys: 'key_', sessions: 'ses_' }[collection];
    if (name === 'id' && prefix) return `/${collection}/${prefix}${'0'.repeat(26)}`;
    if (name === 'code') return `/${collection}/000000`;
    return `/${collection}/x`;
  });
}

test('live: every spec route is routed by the server (no route_not_found, no 405)', { skip: !BASE_URL && 'COBROWSE_BASE_URL is not set' }, async (t) => {
  const unrouted = [];
  const mismatches = [];
  for (const route of specRoutes()) {
    const path = concretePath(route.path);
    const init = { method: route.method, headers: {}, signal: AbortSignal.timeout(10000) };
    if (route.method === 'OPTIONS') {
      init.headers.Origin = 'https://www.example.org';
      init.headers['Access-Control-Request-Method'] = 'POST';
      init.headers['Access-Control-Request-Headers'] = 'authorization, content-type';
    } else if (route.method === 'POST' || route.method === 'PATCH') {
      init.headers['Content-Type'] = 'application/json';
      init.body = '{}';
    }
    const base = SPEC.paths[route.path]?.servers ? PROXY_URL : BASE_URL;
    assert.ok(base, `${route.method} ${route.path} is on the proxy listener: set COBROWSE_PROXY_URL`);
    let res;
    try {
      res = await fetch(base + path, init);
    } catch (e) {
      assert.fail(`${route.method} ${base}${path}: request failed: ${e.cause?.message ?? e.message}`);
    }
    const contentType = res.headers.get('content-type');
    const text = await res.text();
    let body = text === '' ? undefined : text;
    if (text && /json/i.test(contentType ?? '')) {
      try {
        body = JSON.parse(text);
      } catch {
        /* checkResponse reports it */
      }
    }
    const what = `${route.method} ${path} (spec ${route.path}) -> ${res.status}`;
    if (res.status === 405 || (res.status === 404 && body?.code === 'route_not_found')) {
      unrouted.push(`${what} ${body?.code ?? ''}`.trim());
      continue;
    }
    try {
      checkResponse(route.method, path, res.status, body, contentType, res.headers);
    } catch (e) {
      mismatches.push(e.message);
    }
  }
  assert.deepEqual(unrouted, [], `spec routes the server does not route:\n  ${unrouted.join('\n  ')}`);
  await t.test('unauthenticated answers match the spec', () => {
    assert.deepEqual(mismatches, [], mismatches.join('\n\n'));
  });
});
