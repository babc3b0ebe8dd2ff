// Helpers for the proxy's integration tests (tests/integration/proxy*.test.mjs): a scriptable
// origin server on a loopback address that counts what reaches it, proxy URLs built like the
// viewer builds them, and caps signed with a server's own secret (docs/proxy.md, "Proxy URLs").
// Everything listens on and talks to loopback addresses only.

import http from 'node:http';
import { createHmac } from 'node:crypto';

/**
 * origin({host, port, routes}) -> {url(path), port, host, hits(path), total(), close(), server}
 * routes: {path: (req, res, n) => void} where n is this path's request count (1 for the first).
 * Unknown paths answer 404.
 */
export async function origin({ host = '127.0.0.1', port = 0, routes = {} } = {}) {
  const counts = new Map();
  const seen = [];
  const server = http.createServer((req, res) => {
    const path = req.url.split('?')[0];
    const n = (counts.get(path) || 0) + 1;
    counts.set(path, n);
    seen.push({ path, headers: req.headers });
    const h = routes[path];
    if (h) h(req, res, n);
    else { res.writeHead(404, { 'content-type': 'text/plain' }); res.end('no'); }
  });
  await new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, resolve);
  });
  const bound = server.address().port;
  const hostPart = host.includes(':') ? `[${host}]` : host;
  return {
    server, port: bound, host, seen,
    origin: `http://${hostPart}:${bound}`,
    url: (p) => `http://${hostPart}:${bound}${p}`,
    hits: (p) => counts.get(p) || 0,
    total: () => [...counts.values()].reduce((a, b) => a + b, 0),
    close: () => new Promise((r) => { server.closeAllConnections?.(); server.close(() => r()); }),
  };
}

export const b64url = (s) => Buffer.from(s, 'utf8').toString('base64url');

/** The proxy URL of url under proxyBase (GET /v1/token/session's proxy_base). */
export function proxyUrl(proxyBase, kind, url) {
  return `${proxyBase}/${kind}/${b64url(url)}`;
}

/** The proxy key and signatures of docs/proxy.md, for a server whose JWT secret is known. */
export function signer(jwtSecretHex) {
  const key = createHmac('sha256', Buffer.from(jwtSecretHex, 'hex')).update('cobrowse proxy key v1').digest();
  const mac = (msg) => createHmac('sha256', key).update(msg).digest().subarray(0, 16).toString('base64url');
  return {
    cap: (tenant, session, exp) => `${tenant}.${session}.${exp}.${mac(`cap\n${tenant}\n${session}\n${exp}`)}`,
    ref: (tenant, kind, target) => mac(`ref\n${tenant}\n${kind}\n${target}`),
  };
}

/** A 1x1 PNG. */
export const PNG = Buffer.from(
  '89504e470d0a1a0a0000000d49484452000000010000000108060000001f15c4890000000d4944415478da63f8ffff3f0005fe02fea7d6a4b40000000049454e44ae426082',
  'hex');
