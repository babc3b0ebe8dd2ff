// Slow clients cannot hold the REST port (api/deadline.c and --http-connections-per-ip): this file
// starts its own server with small limits, has "attackers" on 127.0.0.2..127.0.0.(1+ADDRS) (Linux
// routes all of 127/8 to lo) open more connections than the server holds and trickle header
// bytes on them, and checks that
//   - each address holds at most --http-connections-per-ip of them, so the rest of the listener
//     stays free: /healthz from 127.0.0.1 answers while every held connection is still open;
//   - the held connections are closed by the server once --http-request-seconds have passed
//     since their last answer, although they keep sending bytes (MHD's inactivity timeout alone
//     never fires for them);
//   - an idle keep-alive connection (answered, then silent) is not closed by the deadline: a
//     client reusing it would race the close.
// Nothing here measures speed: "answers while held" is an order of events.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import http from 'node:http';
import { startServer, assertCleanExit } from '../relay/lib/server.mjs';

const PER_IP = 4;
const ADDRS = 8; // 8 x 4 = 32 held connections at most
const ATTEMPTS_PER_ADDR = 20; // 160 attempts: without a per-address limit they fill the listener
// MHD splits the limit between its threads (64 each here): even if every held connection landed
// on one thread, that thread would keep room for /healthz.
const MAX_CONNECTIONS = 128;
// Long enough that, on a loaded machine, every attempt settles and /healthz is asked before the
// first held connection's deadline (the check of the order of events needs that, not speed).
const DEADLINE_S = 8;
const TRICKLE_MS = 200;

let srv;

before(async () => {
  srv = await startServer({
    name: 'slow-clients',
    flags: {
      'http-threads': 2,
      'http-max-connections': MAX_CONNECTIONS,
      'http-connections-per-ip': PER_IP,
      'http-request-seconds': DEADLINE_S,
    },
  });
});

after(async () => {
  if (srv) assertCleanExit(await srv.stop(), 'cobrowsed (slow-clients)');
});

/**
 * One attacker connection from localAddress: sends a whole request (so that an answer proves the
 * server accepted the connection), then starts the next request and trickles one header byte
 * every TRICKLE_MS for ever. Resolves `settled` with 'held' (answered) or 'refused' (closed
 * without an answer); `closed` resolves with {at, answeredAt} when the server ends it.
 */
function attacker(localAddress, { trickle = true } = {}) {
  const sock = net.connect({ host: '127.0.0.1', port: srv.port, localAddress });
  const st = { sock, answeredAt: 0, open: true, timer: null };
  let buf = '';
  let settle;
  st.settled = new Promise((r) => { settle = r; });
  st.closed = new Promise((resolve) => {
    const done = () => {
      if (!st.open) return;
      st.open = false;
      clearInterval(st.timer);
      settle(st.answeredAt ? 'held' : 'refused');
      resolve({ at: Date.now(), answeredAt: st.answeredAt });
    };
    sock.on('close', done);
    sock.on('error', done);
  });
  sock.on('connect', () => {
    sock.write(`GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n`);
  });
  sock.on('data', (d) => {
    buf += d.toString('latin1');
    if (st.answeredAt || !/\r\n\r\n[\s\S]*"status":"ok"/.test(buf)) return;
    st.answeredAt = Date.now();
    settle('held');
    if (!trickle) return;
    sock.write('GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: ');
    st.timer = setInterval(() => { if (st.open) sock.write('a'); }, TRICKLE_MS);
  });
  return st;
}

/** GET /healthz from 127.0.0.1 on a fresh connection -> status code. */
function healthz() {
  return new Promise((resolve, reject) => {
    const req = http.get({
      host: '127.0.0.1', port: srv.port, path: '/healthz', localAddress: '127.0.0.1', agent: false,
      headers: { connection: 'close' },
    }, (res) => { res.resume(); res.on('end', () => resolve(res.statusCode)); });
    req.on('error', reject);
  });
}

test('slow clients hold at most their share and are closed after the request deadline', { timeout: 120_000 }, async () => {
  const idle = attacker('127.0.0.1', { trickle: false });
  assert.equal(await idle.settled, 'held', 'the keep-alive client got its answer');
  const conns = [];
  for (let a = 0; a < ADDRS; a++) {
    for (let k = 0; k < ATTEMPTS_PER_ADDR; k++) conns.push({ addr: `127.0.0.${2 + a}`, ...attacker(`127.0.0.${2 + a}`) });
  }
  const outcomes = await Promise.all(conns.map((c) => c.settled));

  const heldBy = {};
  conns.forEach((c, i) => { if (outcomes[i] === 'held') heldBy[c.addr] = (heldBy[c.addr] || 0) + 1; });
  for (let a = 0; a < ADDRS; a++) {
    const addr = `127.0.0.${2 + a}`;
    assert.ok((heldBy[addr] || 0) <= PER_IP, `${addr} holds ${heldBy[addr]} connections, more than ${PER_IP}`);
    assert.ok((heldBy[addr] || 0) >= 1, `${addr} got no connection at all`);
  }
  const held = conns.filter((c, i) => outcomes[i] === 'held');

  // The listener still has room: /healthz from another address answers while every held
  // connection is open (none has been cut by the deadline yet).
  const status = await healthz();
  const stillOpen = held.filter((c) => c.open).length;
  assert.equal(status, 200, '/healthz answers');
  assert.equal(stillOpen, held.length, '/healthz answered while every slow client still held its connection');

  // Every held connection is closed by the server, and by the deadline, not as a refusal: not
  // before the deadline since its answer (less a second: the server starts counting when it has
  // sent the answer, this process when it has read it).
  const closes = await Promise.all(held.map((c) => c.closed));
  for (const { at, answeredAt } of closes) {
    assert.ok(at - answeredAt >= (DEADLINE_S - 1) * 1000,
      `a slow connection was closed ${at - answeredAt} ms after its answer, before the ${DEADLINE_S} s deadline`);
  }
  assert.ok(idle.open, 'the idle keep-alive connection outlived the slow ones: the deadline left it alone');
  idle.sock.destroy();
  const metrics = await (await fetch(`${srv.baseUrl}/metrics`)).text();
  const cut = Number((metrics.match(/^http_connections_deadline_closed_total (\d+)$/m) || [])[1]);
  assert.ok(cut >= held.length, `http_connections_deadline_closed_total ${cut} counts the ${held.length} slow connections`);
});
