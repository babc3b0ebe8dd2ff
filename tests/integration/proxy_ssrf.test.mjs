// The proxy's SSRF guard end to end (docs/proxy.md, "What the proxy refuses to reach"), with a
// server of its own that may reach 127.0.0.2/32 only: 127.0.0.1, [::1], [::ffff:127.0.0.1], a
// host name resolving to loopback, a redirect to loopback from an allowed origin and a DNS answer
// that changes between two fetches are all refused, and the loopback origin never sees a request.
// Every URL here names a loopback address or a name that resolves to one; the rebinding case runs
// in a network namespace with no route at all (lib/proxy_rebind.mjs).

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { api, expectStatus } from './lib/client.mjs';
import { startServer } from '../relay/lib/server.mjs';
import { platform } from '../relay/lib/platform.mjs';
import { origin, b64url, signer, PNG } from './lib/proxy_origin.mjs';

const F = {};
let srv;
const png = (req, res) => { res.writeHead(200, { 'content-type': 'image/png' }); res.end(PNG); };

before(async () => {
  srv = await startServer({
    name: 'proxy-ssrf',
    flags: { 'proxy-allow-private': '127.0.0.2/32' },
    env: { COBROWSE_PROXY_ALLOW_PRIVATE: '' },
  });
  F.loop = await origin({ host: '127.0.0.1', routes: { '/x.png': png } });
  F.allowed = await origin({
    host: '127.0.0.2',
    routes: {
      '/ok.png': png,
      '/to-loopback': (req, res) => { res.writeHead(302, { location: F.loop.url('/x.png') }); res.end(); },
    },
  });
  const P = platform(srv);
  F.sign = signer(srv.jwtSecret);
  const t = await P.tenant({ allowed_origins: [F.allowed.origin] });
  const s = await P.session(t.id);
  const a = await P.agentToken(t.id, s.id);
  F.base = expectStatus(await api('GET', `${srv.baseUrl}/v1/token/session`, { token: a.token }), 200, 'ctx').proxy_base;
  F.cap = F.base.split('/v1/proxy/')[1];
});

after(async () => {
  await Promise.all([F.loop?.close(), F.allowed?.close()]);
  const r = await srv?.stop();
  if (r) assert.ok(!/ERROR: (Address|Leak)Sanitizer|runtime error:/.test(r.log), 'sanitizers quiet');
});

/** The URL through a ref (so that the origin allow-list is not what refuses it). */
async function viaRef(url) {
  const target = b64url(url);
  const res = await fetch(`${F.base}/asset/${target}.${F.sign.ref(F.cap.split('.')[0], 'asset', target)}`);
  const text = await res.text();
  return { status: res.status, body: res.status === 200 ? null : JSON.parse(text), text };
}

test('the allowed range is reachable (the guard is not simply closed)', async () => {
  const r = await viaRef(F.allowed.url('/ok.png'));
  assert.equal(r.status, 200, r.text);
});

for (const [what, host, verdict] of [
  ['127.0.0.1', '127.0.0.1', /loopback/],
  ['[::1]', '[::1]', /loopback/],
  ['[::ffff:127.0.0.1] (IPv4-mapped)', '[::ffff:127.0.0.1]', /./],
  ['localhost', 'localhost', /loopback/],
]) {
  test(`a target at ${what} is refused at connect time`, async () => {
    const r = await viaRef(`http://${host}:${F.loop.port}/x.png`);
    assert.equal(r.status, 403, r.text);
    assert.equal(r.body.code, 'proxy_address_blocked', r.text);
    assert.match(r.body.detail, verdict);
    assert.equal(F.loop.total(), 0, 'the loopback origin saw nothing');
  });
}

test('a redirect from an allowed origin to loopback is refused', async () => {
  const r = await fetch(`${F.base}/asset/${b64url(F.allowed.url('/to-loopback'))}`);
  const body = await r.json();
  assert.equal(r.status, 403, JSON.stringify(body));
  assert.equal(body.code, 'proxy_address_blocked');
  assert.equal(F.allowed.hits('/to-loopback'), 1);
  assert.equal(F.loop.total(), 0);
});

const REBIND = fileURLToPath(new URL('./lib/proxy_rebind.mjs', import.meta.url));

test('a DNS answer that changes to loopback between two fetches is refused', async () => {
  // A mount and network namespace of this test's own: loopback only, resolv.conf pointing at the
  // child's DNS server. The child prints what it saw.
  const script = 'set -e; ip link set lo up; d=$(mktemp -d); ' +
    'printf "nameserver 127.0.0.1\\noptions attempts:1 timeout:2\\n" > "$d/resolv.conf"; ' +
    'mount --bind "$d/resolv.conf" /etc/resolv.conf; exec node "$0"';
  // As root, no user namespace: one would lose access to the PostgreSQL socket's folder (owned by
  // postgres, a user the namespace does not map). Without root, -r maps us to root inside.
  const flags = process.getuid() === 0 ? '-mn' : '-rmn';
  const out = await new Promise((resolve, reject) => {
    execFile('unshare', [flags, 'sh', '-c', script, REBIND], { timeout: 120_000, env: process.env },
      (err, stdout, stderr) => (err ? reject(new Error(`${err.message}\n${stderr}`)) : resolve(stdout)));
  });
  const r = JSON.parse(out.trim().split('\n').at(-1));
  assert.equal(r.first.status, 200, `first fetch (127.0.0.2): ${JSON.stringify(r)}`);
  assert.equal(r.second.status, 403, `second fetch (127.0.0.1): ${JSON.stringify(r)}`);
  assert.equal(r.second.code, 'proxy_address_blocked');
  assert.equal(r.loopbackHits, 0);
  assert.ok(r.aQueries >= 2, 'each fetch resolved the name again');
  assert.equal(r.sanitizer, false);
});
