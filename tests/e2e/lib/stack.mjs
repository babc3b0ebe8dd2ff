// The platform the end-to-end tests run against: the server scripts/test.sh starts (env
// COBROWSE_BASE_URL, COBROWSE_ADMIN_TOKEN, COBROWSE_RELAY_URL; it must serve the web build,
// COBROWSE_WEB_ROOT), plus the demo partner backend and shop (web/demo/server.mjs) started in this
// process on a free port with a tenant of its own.
//
//   const stack = await startStack();   // {baseUrl, adminToken, relayUrl, demo, consoleUrl, api(), stop()}
//   after(() => stack.stop());

import assert from 'node:assert/strict';
import { after, before } from 'node:test';
import { launch } from './browser.mjs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));
const ROOT = join(here, '..', '..', '..');

export function platformEnv() {
  const baseUrl = (process.env.COBROWSE_BASE_URL ?? '').replace(/\/+$/, '');
  const adminToken = process.env.COBROWSE_ADMIN_TOKEN ?? '';
  assert.ok(baseUrl && adminToken, 'set COBROWSE_BASE_URL and COBROWSE_ADMIN_TOKEN (scripts/test.sh does)');
  return { baseUrl, adminToken, relayUrl: process.env.COBROWSE_RELAY_URL ?? null };
}

/** A REST call on the platform as the admin (or with {token}); returns {status, body}. */
export async function platformCall(baseUrl, adminToken, method, path, { token = adminToken, tenant, body } = {}) {
  const headers = { Authorization: `Bearer ${token}` };
  if (tenant) headers['Cobrowse-Tenant'] = tenant;
  if (body !== undefined) headers['Content-Type'] = 'application/json';
  const res = await fetch(baseUrl + path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
  const text = await res.text();
  let json = null;
  try {
    json = text ? JSON.parse(text) : null;
  } catch {
    json = text;
  }
  return { status: res.status, body: json };
}

/**
 * The server of scripts/test.sh and a demo backend on a free port. Each call makes a new demo
 * tenant (no state file), so test files do not see each other's sessions.
 */
export async function startStack({ log = quietLog } = {}) {
  const { baseUrl, adminToken, relayUrl } = platformEnv();
  const { startDemo } = await import(join(ROOT, 'web', 'demo', 'server.mjs'));
  const demo = await startDemo({ api: baseUrl, adminToken, listen: '127.0.0.1:0', statePath: null, log });
  const partner = demo.origin;
  return {
    baseUrl,
    adminToken,
    relayUrl,
    demo,
    /** The shop's URL of a page ('/', '/form.html', ...). */
    shopUrl: (p = '/') => new URL(p, demo.url).toString(),
    /** The demo console, pointed at this demo backend. */
    consoleUrl: `${baseUrl}/demo/console/?partner=${encodeURIComponent(partner)}`,
    api: (method, path, opts = {}) => platformCall(baseUrl, adminToken, method, path, { tenant: demo.tenantId, ...opts }),
    /** The partner API as the console calls it (GET /partner/sessions...). */
    partner: async (method, path) => {
      const res = await fetch(partner + path, { method });
      return { status: res.status, body: await res.json().catch(() => null) };
    },
    stop: () => demo.stop(),
  };
}

/** Keeps the demo's log lines out of the test output unless they are warnings or errors. */
function quietLog(level, msg, fields = {}) {
  if (level === 'warn' || level === 'error' || process.env.COBROWSE_E2E_VERBOSE) {
    process.stderr.write(JSON.stringify({ level, component: 'demo', msg, ...fields }) + '\n');
  }
}

/**
 * The fixture of a test file: before its tests, the stack and a browser; after them, both
 * stopped. onReady(stack, browser) hands them over (awaited: a file's own setup can go there).
 *   let stack, browser;
 *   useStack((s, b) => ((stack = s), (browser = b)));
 */
export function useStack(onReady) {
  let stack = null;
  let browser = null;
  before(async () => {
    stack = await startStack();
    browser = await launch();
    await onReady(stack, browser);
  });
  after(async () => {
    await browser?.close();
    await stack?.stop();
  });
}
