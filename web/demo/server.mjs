#!/usr/bin/env node
// The demo "partner backend": what a company that embeds co-browsing runs on its own servers.
//   - On start it makes sure a demo tenant exists on the platform ("Demo Shop", its branding,
//     allowed origins, masking, permissions) with a publishable key (pk_, public: it goes in the
//     shop's script tag) and a secret key (sk_, never leaves this process). Ids and keys are kept
//     in a state file (mode 600) and reused; the tenant is recreated when it no longer exists.
//   - It serves the demo shop (web/demo/site/) on its own origin, the "second origin" of a real
//     deployment: {{API}} and {{KEY}} in HTML become the platform URL and the publishable key.
//   - It answers the demo agent console (served by cobrowsed at /demo/console/) under /partner/,
//     with CORS for the platform's origin only: the tenant's live sessions, a session by join
//     code, and "join", which mints an agent token server-side and returns the viewer's embed_url.
//
// Usage: node web/demo/server.mjs --api http://127.0.0.1:8080 --admin-token-file .cobrowse/admin-token
//          [--listen 127.0.0.1:8090] [--state .cobrowse/demo.json]
// Or in-process: const demo = await startDemo({api, adminToken, listen, statePath});
//   -> {url, origin, tenantId, publishableKey, stop()}   (listen '127.0.0.1:0' picks a free port)
//
// Logs are JSON lines on stdout; no key or token is ever written to them.
// This is a demo: /partner/ has no agent login. Keep it on loopback.

import { createServer } from 'node:http';
import { chmodSync, existsSync, mkdirSync, readFileSync, renameSync, statSync, writeFileSync } from 'node:fs';
import { dirname, extname, join, normalize, resolve, sep } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));
const SITE_DIR = join(here, 'site');

export const DEMO_TENANT = Object.freeze({
  name: 'Demo Shop',
  branding: {
    product_name: 'Acme Help',
    primary_color: '#1f6f4a',
    accent_color: '#f29a2e',
    consent_text: 'Allow an Acme Outdoor support agent to see this page with you?',
  },
  permissions: { remote_control: 'ask' },
  masking: { selectors: ['.secret-note'], mask_all_inputs: false },
  limits: {
    concurrent_sessions: 200,
    sessions_per_minute: 600,
    frames_per_second: 1000,
    bytes_per_second: 16777216,
    agents_per_session: 5,
    api_requests_per_second: 200,
  },
});

export const DEMO_AGENT = Object.freeze({ id: 'demo-agent', name: 'Dana (Acme support)' });

const TYPES = {
  '.html': 'text/html; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.mjs': 'text/javascript; charset=utf-8',
  '.json': 'application/json; charset=utf-8',
  '.svg': 'image/svg+xml',
  '.png': 'image/png',
  '.ico': 'image/x-icon',
  '.txt': 'text/plain; charset=utf-8',
};

function defaultLog(level, msg, fields = {}) {
  process.stdout.write(JSON.stringify({ ts: new Date().toISOString(), level, component: 'demo', msg, ...fields }) + '\n');
}

function parseListen(listen) {
  const m = /^(.*):(\d+)$/.exec(String(listen));
  if (!m) throw new Error(`--listen must be HOST:PORT, got ${listen}`);
  return { host: m[1].replace(/^\[|\]$/g, ''), port: Number(m[2]) };
}

/** The other loopback spelling of an origin (127.0.0.1 <-> localhost), or null. */
function loopbackTwin(origin) {
  const u = new URL(origin);
  if (u.hostname === '127.0.0.1') u.hostname = 'localhost';
  else if (u.hostname === 'localhost') u.hostname = '127.0.0.1';
  else return null;
  return u.origin;
}

class ApiError extends Error {
  constructor(status, body, what) {
    super(`${what}: HTTP ${status}${body?.code ? ` ${body.code}` : ''}${body?.detail ? `: ${body.detail}` : ''}`);
    this.status = status;
    this.body = body;
  }
}

function platformClient(api) {
  const base = api.replace(/\/+$/, '');
  return async function call(method, path, { token, tenant, body, what = `${method} ${path}` } = {}) {
    const headers = { Authorization: `Bearer ${token}`, Accept: 'application/json' };
    if (tenant) headers['Cobrowse-Tenant'] = tenant;
    if (body !== undefined) headers['Content-Type'] = 'application/json';
    const res = await fetch(base + path, {
      method,
      headers,
      body: body === undefined ? undefined : JSON.stringify(body),
      signal: AbortSignal.timeout(10000),
    });
    const text = await res.text();
    let json = null;
    try {
      json = text ? JSON.parse(text) : null;
    } catch {
      json = null;
    }
    if (!res.ok) throw new ApiError(res.status, json, what);
    return json;
  };
}

function readState(path) {
  if (!path || !existsSync(path)) return null;
  try {
    return JSON.parse(readFileSync(path, 'utf8'));
  } catch {
    return null;
  }
}

function writeState(path, state) {
  if (!path) return;
  mkdirSync(dirname(path), { recursive: true });
  const tmp = `${path}.${process.pid}.tmp`;
  writeFileSync(tmp, JSON.stringify(state, null, 2) + '\n', { mode: 0o600 });
  chmodSync(tmp, 0o600);
  renameSync(tmp, path);
}

/** The demo tenant and its two keys: reused from the state file when still valid, else created. */
async function ensureTenant({ call, api, adminToken, statePath, origins, log }) {
  const settings = { ...DEMO_TENANT, allowed_origins: origins };
  const saved = readState(statePath);
  if (saved && saved.api === api && saved.tenant_id && saved.publishable_key && saved.secret_key) {
    try {
      const t = await call('GET', `/v1/tenants/${saved.tenant_id}`, { token: adminToken, what: 'get demo tenant' });
      if (t.status === 'active') {
        const keys = await call('GET', '/v1/api_keys?limit=100', { token: adminToken, tenant: saved.tenant_id, what: 'list demo keys' });
        const live = new Set((keys.data ?? []).filter((k) => !k.revoked_at && (!k.expires_at || Date.parse(k.expires_at) > Date.now())).map((k) => k.id));
        if (live.has(saved.publishable_key_id) && live.has(saved.secret_key_id)) {
          // Settings and origins may have changed since (another port, a newer demo): apply them.
          const { name, ...patch } = settings;
          await call('PATCH', `/v1/tenants/${saved.tenant_id}`, { token: adminToken, body: { name, ...patch }, what: 'update demo tenant' });
          log('info', 'demo tenant reused', { tenant_id: saved.tenant_id });
          return saved;
        }
        log('warn', 'demo keys no longer valid: creating a new demo tenant', { tenant_id: saved.tenant_id });
      } else {
        log('warn', 'demo tenant not active: creating a new one', { tenant_id: saved.tenant_id, status: t.status });
      }
    } catch (e) {
      if (!(e instanceof ApiError) || (e.status !== 404 && e.status !== 410)) throw e;
      log('warn', 'demo tenant no longer exists: creating a new one', { tenant_id: saved.tenant_id });
    }
  }
  const tenant = await call('POST', '/v1/tenants', { token: adminToken, body: settings, what: 'create demo tenant' });
  const pk = await call('POST', '/v1/api_keys', {
    token: adminToken,
    tenant: tenant.id,
    body: { type: 'publishable', name: 'demo shop (browser)' },
    what: 'create publishable key',
  });
  const sk = await call('POST', '/v1/api_keys', {
    token: adminToken,
    tenant: tenant.id,
    body: { type: 'secret', name: 'demo partner backend', scopes: ['sessions:read', 'sessions:write', 'agent_tokens:write'] },
    what: 'create secret key',
  });
  const state = {
    api,
    tenant_id: tenant.id,
    publishable_key_id: pk.id,
    publishable_key: pk.secret,
    secret_key_id: sk.id,
    secret_key: sk.secret,
    created_at: new Date().toISOString(),
  };
  if (!state.publishable_key?.startsWith('pk_') || !state.secret_key?.startsWith('sk_')) {
    throw new Error('the platform answered POST /v1/api_keys without a pk_/sk_ secret');
  }
  writeState(statePath, state);
  log('info', 'demo tenant created', { tenant_id: tenant.id });
  return state;
}

function sessionSummary(s) {
  const created = Date.parse(s.created_at);
  return {
    id: s.id,
    join_code: s.join_code,
    status: s.status,
    visitor: { name: s.visitor?.name ?? null, email: s.visitor?.email ?? null, external_id: s.visitor?.external_id ?? null },
    created_at: s.created_at,
    started_at: s.started_at,
    expires_at: s.expires_at,
    age_seconds: Number.isFinite(created) ? Math.max(0, Math.round((Date.now() - created) / 1000)) : null,
  };
}

function send(res, status, body, headers = {}) {
  const data = typeof body === 'string' || Buffer.isBuffer(body) ? body : JSON.stringify(body);
  const type = typeof body === 'string' || Buffer.isBuffer(body) ? undefined : 'application/json; charset=utf-8';
  res.writeHead(status, {
    ...(type ? { 'Content-Type': type } : {}),
    'Content-Length': Buffer.byteLength(data),
    'X-Content-Type-Options': 'nosniff',
    ...headers,
  });
  res.end(res.req.method === 'HEAD' ? undefined : data);
}

/**
 * Starts the demo: ensures the tenant and keys, then serves the shop and the partner API.
 * @param {{api: string, adminToken: string, listen?: string, statePath?: string|null,
 *          siteDir?: string, log?: (level: string, msg: string, fields?: object) => void}} opts
 */
export async function startDemo({ api, adminToken, listen = '127.0.0.1:8090', statePath = null, siteDir = SITE_DIR, log = defaultLog }) {
  if (!api) throw new Error('startDemo: api (the platform URL) is required');
  if (!adminToken) throw new Error('startDemo: adminToken is required');
  api = api.replace(/\/+$/, '');
  const platformOrigin = new URL(api).origin;
  const consoleOrigins = new Set([platformOrigin, loopbackTwin(platformOrigin)].filter(Boolean));
  const call = platformClient(api);
  const { host, port } = parseListen(listen);
  siteDir = resolve(siteDir);

  let demo = null; // the tenant state, once ready
  const server = createServer((req, res) => {
    handle(req, res).catch((e) => {
      const upstream = e instanceof ApiError;
      log(upstream ? 'warn' : 'error', 'request failed', { method: req.method, path: req.url.split('?')[0], error: e.message });
      if (!res.headersSent) send(res, upstream ? (e.status === 404 ? 404 : 502) : 500, { error: upstream ? e.message : 'internal error' });
      else res.destroy();
    });
  });

  async function handle(req, res) {
    const url = new URL(req.url, 'http://demo.invalid');
    const path = url.pathname;
    if (path.startsWith('/partner/')) return partner(req, res, path);
    if (req.method !== 'GET' && req.method !== 'HEAD') return send(res, 405, { error: 'method not allowed' }, { Allow: 'GET, HEAD' });
    if (path === '/healthz') return send(res, demo ? 200 : 503, { status: demo ? 'ok' : 'starting' });
    if (!demo) return send(res, 503, 'The demo is starting, reload in a moment.\n', { 'Content-Type': 'text/plain; charset=utf-8', 'Retry-After': '1' });
    return serveSite(req, res, path);
  }

  function serveSite(req, res, path) {
    let rel = decodeURIComponent(path);
    if (rel === '/' || rel === '') rel = '/index.html';
    // The single-page app's own routes (reloading /spa/cart shows the app at that route).
    if (rel === '/spa' || rel.startsWith('/spa/')) rel = '/spa.html';
    if (rel.endsWith('/')) rel += 'index.html';
    const file = normalize(join(siteDir, rel));
    if (/\/_[^/]*$/.test(rel)) return send(res, 404, 'not found\n', { 'Content-Type': 'text/plain; charset=utf-8' }); // partials
    if (!file.startsWith(siteDir + sep) || rel.includes('\0')) return send(res, 404, 'not found\n', { 'Content-Type': 'text/plain; charset=utf-8' });
    let st;
    try {
      st = statSync(file);
    } catch {
      st = null;
    }
    if (!st?.isFile()) {
      return send(res, 404, '<!doctype html><meta charset="utf-8"><title>Not found</title><p>Not found. <a href="/">Back to the shop</a></p>', {
        'Content-Type': TYPES['.html'],
      });
    }
    const ext = extname(file).toLowerCase();
    let body = readFileSync(file);
    if (ext === '.html') body = renderHtml(body.toString('utf8'), rel);
    return send(res, 200, body, {
      'Content-Type': TYPES[ext] ?? 'application/octet-stream',
      'Cache-Control': 'no-cache',
      'Referrer-Policy': 'strict-origin-when-cross-origin',
    });
  }

  // HTML templating: <!--#include _part.html--> (the shared header and footer), the current
  // page's nav link marked, then {{API}} and {{KEY}}.
  function renderHtml(html, rel) {
    html = html.replace(/<!--#include (_[A-Za-z0-9_-]+\.html)-->/g, (_, name) => readFileSync(join(siteDir, name), 'utf8'));
    const page = rel === '/spa.html' ? '/spa' : rel === '/index.html' ? '/' : rel;
    html = html.replace(`<a href="${page}">`, `<a href="${page}" aria-current="page">`);
    return html.replaceAll('{{API}}', api).replaceAll('{{KEY}}', demo.publishable_key);
  }

  async function partner(req, res, path) {
    const origin = req.headers.origin;
    const cors = {};
    if (origin !== undefined) {
      // Browsers only: the console on the platform's origin. Tools without an Origin (curl, the
      // tests) are let through: this backend trusts whoever reaches it (a demo, on loopback).
      if (!consoleOrigins.has(origin)) {
        log('warn', 'partner API refused a foreign origin', { origin, path });
        return send(res, 403, { error: 'origin not allowed' }, { Vary: 'Origin' });
      }
      Object.assign(cors, { 'Access-Control-Allow-Origin': origin, Vary: 'Origin' });
    }
    if (req.method === 'OPTIONS') {
      return send(res, 204, '', {
        ...cors,
        'Access-Control-Allow-Methods': 'GET, POST',
        'Access-Control-Allow-Headers': 'Content-Type',
        'Access-Control-Max-Age': '600',
      });
    }
    if (!demo) return send(res, 503, { error: 'starting' }, { ...cors, 'Retry-After': '1' });
    const sk = { token: demo.secret_key, tenant: undefined };
    let m;
    if (req.method === 'GET' && path === '/partner/sessions') {
      const lists = await Promise.all(
        ['active', 'pending'].map((status) => call('GET', `/v1/sessions?status=${status}&limit=100`, { ...sk, what: `list ${status} sessions` })),
      );
      const sessions = lists
        .flatMap((l) => l.data ?? [])
        .map(sessionSummary)
        .sort((a, b) => Date.parse(b.created_at) - Date.parse(a.created_at));
      return send(res, 200, { tenant_id: demo.tenant_id, sessions }, { ...cors, 'Cache-Control': 'no-store' });
    }
    if (req.method === 'GET' && (m = /^\/partner\/sessions\/by_code\/([0-9]{6})$/.exec(path))) {
      const s = await call('GET', `/v1/sessions/by_code/${m[1]}`, { ...sk, what: 'session by code' });
      return send(res, 200, sessionSummary(s), { ...cors, 'Cache-Control': 'no-store' });
    }
    if (req.method === 'POST' && (m = /^\/partner\/sessions\/(ses_[A-Za-z0-9]{1,64})\/join$/.exec(path))) {
      const t = await call('POST', `/v1/sessions/${m[1]}/agent_tokens`, {
        ...sk,
        body: { agent: { ...DEMO_AGENT }, permissions: { remote_control: 'ask' } },
        what: 'create agent token',
      });
      log('info', 'agent joined a session', { session_id: m[1], agent_id: DEMO_AGENT.id });
      return send(res, 200, { session_id: t.session_id, embed_url: t.embed_url, expires_at: t.expires_at }, { ...cors, 'Cache-Control': 'no-store' });
    }
    if (req.method === 'POST' && (m = /^\/partner\/sessions\/(ses_[A-Za-z0-9]{1,64})\/end$/.exec(path))) {
      const s = await call('POST', `/v1/sessions/${m[1]}/end`, { ...sk, body: { reason: 'ended by the demo console' }, what: 'end session' });
      log('info', 'session ended from the console', { session_id: m[1] });
      return send(res, 200, sessionSummary(s), cors);
    }
    return send(res, 404, { error: 'no such partner route' }, cors);
  }

  await new Promise((ok, fail) => {
    server.once('error', fail);
    server.listen(port, host, () => {
      server.off('error', fail);
      ok();
    });
  });
  const addr = server.address();
  const urlHost = addr.family === 'IPv6' ? `[${addr.address}]` : addr.address === '0.0.0.0' ? '127.0.0.1' : addr.address;
  const origin = `http://${urlHost}:${addr.port}`;
  const origins = [origin, loopbackTwin(origin)].filter(Boolean);
  try {
    demo = await ensureTenant({ call, api, adminToken, statePath, origins, log });
  } catch (e) {
    server.close();
    throw e;
  }
  log('info', 'demo ready', { url: `${origin}/`, tenant_id: demo.tenant_id, api, console: `${api}/demo/console/?partner=${encodeURIComponent(origin)}` });

  return {
    url: `${origin}/`,
    origin,
    tenantId: demo.tenant_id,
    publishableKey: demo.publishable_key,
    stop: () =>
      new Promise((ok) => {
        server.close(() => ok());
        server.closeAllConnections?.();
      }),
  };
}

function parseArgs(argv) {
  const o = {};
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    const m = /^--([a-z-]+)(?:=(.*))?$/.exec(a);
    if (!m) throw new Error(`unexpected argument ${a}`);
    if (m[1] === 'help') o.help = true;
    else o[m[1]] = m[2] ?? argv[++i];
  }
  return o;
}

async function main() {
  const o = parseArgs(process.argv.slice(2));
  if (o.help) {
    process.stdout.write(
      'Usage: node web/demo/server.mjs --api URL (--admin-token-file FILE | env COBROWSE_ADMIN_TOKEN)\n' +
        '         [--listen 127.0.0.1:8090] [--state .cobrowse/demo.json]\n',
    );
    return;
  }
  const api = o.api ?? process.env.COBROWSE_BASE_URL ?? 'http://127.0.0.1:8080';
  let adminToken = process.env.COBROWSE_ADMIN_TOKEN;
  if (o['admin-token-file']) adminToken = readFileSync(o['admin-token-file'], 'utf8').trim();
  if (!adminToken) throw new Error('give --admin-token-file FILE or COBROWSE_ADMIN_TOKEN');
  const demo = await startDemo({ api, adminToken, listen: o.listen ?? '127.0.0.1:8090', statePath: o.state ?? null });
  const stop = async (signal) => {
    defaultLog('info', 'stopping', { signal });
    await demo.stop();
    process.exit(0);
  };
  process.on('SIGINT', stop);
  process.on('SIGTERM', stop);
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  main().catch((e) => {
    defaultLog('error', 'demo failed to start', { error: e.message });
    process.exit(1);
  });
}
