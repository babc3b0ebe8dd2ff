// The DNS-rebinding case of tests/integration/proxy_ssrf.test.mjs, run by it inside a network
// namespace of its own (`unshare -mn`, or `-rmn` without root: only a loopback interface, no route anywhere, so not one
// packet can leave the machine even if the guard were broken) with /etc/resolv.conf bind-mounted
// to name a tiny DNS server this script runs on 127.0.0.1:53. That server answers the first A
// query for rebind.test with 127.0.0.2 and every later one with 127.0.0.1; cobrowsed may reach
// 127.0.0.2/32 only. The first fetch must pass, the second (after the answer changed) must be
// refused at connect time. Prints one JSON line with what happened.

import dgram from 'node:dgram';
import { startServer } from '../../relay/lib/server.mjs';
import { platform } from '../../relay/lib/platform.mjs';
import { api } from './client.mjs';
import { origin, b64url, signer, PNG } from './proxy_origin.mjs';

const NAME = 'rebind.test';
let aQueries = 0;

function qname(buf) {
  const labels = [];
  let i = 12;
  while (buf[i] !== 0 && i < buf.length) {
    labels.push(buf.subarray(i + 1, i + 1 + buf[i]).toString('latin1'));
    i += buf[i] + 1;
  }
  return { name: labels.join('.').toLowerCase(), end: i + 5, type: buf.readUInt16BE(i + 1) };
}

function answer(query) {
  const { name, end, type } = qname(query);
  const head = Buffer.from(query.subarray(0, end));
  head[2] = 0x81; // response, recursion desired
  const known = name === NAME;
  head[3] = known ? 0x80 : 0x83; // recursion available; NXDOMAIN for any other name
  head.writeUInt16BE(0, 6);
  head.writeUInt16BE(0, 8);
  head.writeUInt16BE(0, 10);
  if (!known || type !== 1) return head; // AAAA and others: no answer
  aQueries += 1;
  const ip = aQueries === 1 ? [127, 0, 0, 2] : [127, 0, 0, 1];
  head.writeUInt16BE(1, 6);
  const rr = Buffer.from([0xc0, 0x0c, 0, 1, 0, 1, 0, 0, 0, 0, 0, 4, ...ip]); // TTL 0
  return Buffer.concat([head, rr]);
}

const dns = dgram.createSocket('udp4');
dns.on('message', (msg, rinfo) => dns.send(answer(msg), rinfo.port, rinfo.address));
await new Promise((resolve) => dns.bind(53, '127.0.0.1', resolve));

// Connection: close, so that the second fetch needs a new connection (and a new name lookup).
const pngRoute = (req, res) => { res.writeHead(200, { 'content-type': 'image/png', connection: 'close' }); res.end(PNG); };
const allowed = await origin({ host: '127.0.0.2', routes: { '/a.png': pngRoute, '/b.png': pngRoute } });
const loop = await origin({ host: '127.0.0.1', port: allowed.port, routes: { '/a.png': pngRoute, '/b.png': pngRoute } });

const srv = await startServer({ name: 'proxy-rebind', flags: { 'proxy-allow-private': '127.0.0.2/32' }, env: { COBROWSE_PROXY_ALLOW_PRIVATE: '' } });
const result = {};
try {
  const P = platform(srv);
  const sign = signer(srv.jwtSecret);
  const t = await P.tenant({ allowed_origins: ['https://shop.example'] });
  const s = await P.session(t.id);
  const a = await P.agentToken(t.id, s.id);
  const base = (await api('GET', `${srv.baseUrl}/v1/token/session`, { token: a.token })).body.proxy_base;
  const cap = base.split('/v1/proxy/')[1];
  const fetchRef = async (path) => {
    const target = b64url(`http://${NAME}:${allowed.port}${path}`);
    const res = await fetch(`${base}/asset/${target}.${sign.ref(t.id, 'asset', target)}`);
    const text = await res.text();
    return { status: res.status, code: res.status === 200 ? null : JSON.parse(text).code, detail: res.status === 200 ? null : JSON.parse(text).detail };
  };
  result.first = await fetchRef('/a.png');
  result.second = await fetchRef('/b.png');
  result.allowedHits = allowed.total();
  result.loopbackHits = loop.total();
  result.aQueries = aQueries;
} finally {
  const stopped = await srv.stop();
  result.sanitizer = /ERROR: (Address|Leak)Sanitizer|runtime error:/.test(stopped.log);
  await allowed.close();
  await loop.close();
  dns.close();
}
console.log(JSON.stringify(result));
