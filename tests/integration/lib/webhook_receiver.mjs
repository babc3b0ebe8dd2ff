// A real webhook receiver for the delivery tests (docs/webhooks.md): an HTTP server on 127.0.0.1
// (node:http) that verifies every request with the npm `standardwebhooks` package, the library
// a partner would use, and records what arrived.
//
//   const rx = await startReceiver();
//   rx.trust('main', endpoint.secret);           // whsec_...: verify with it (each name alone)
//   ... endpoint url: rx.url ...
//   await rx.waitFor((r) => r.requests.length >= 3, 10_000, 'three deliveries');
//   rx.requests[0] -> {at, method, path, headers, body, envelope, verified, verifiedBy, answered}
//   rx.answer({ status: 429, headers: { 'retry-after': '2' } });   // how the next ones are answered
//   rx.answer((req) => (req.envelope.type === 'session.ended' ? { hold: true } : {}));
//   await rx.down(); ... await rx.up();            // closed, then listening again on the same port
//   await rx.close();
//
// Every request is verified against every trusted secret separately (verifiedBy: {name: true |
// 'the error'}), so a rotation test can check each secret alone; `verified` is true when at
// least one trusted secret verifies it (what a partner's receiver checks).
//
// Answers: {status = 200, headers = {}, body = '', delayMs = 0, hold = false}. A held request
// is answered when release() is called (or never: the server that sent it may be killed); the
// recorded request has `answered: null` until then. Single-threaded (Node's event loop): the
// tests read `requests` between awaits.

import http from 'node:http';
import { Webhook } from 'standardwebhooks';

const MAX_BODY = 1 << 20;

/** startReceiver({port}) -> receiver (see above). port 0 (default): a free one, kept by up(). */
export async function startReceiver({ port = 0 } = {}) {
  const requests = [];
  const secrets = new Map(); // name -> Webhook
  const waiters = new Set();
  const sockets = new Set();
  const held = new Set();
  let answerWith = () => ({});
  let server = null;

  const notify = () => { for (const w of [...waiters]) w(); };

  function verifyAll(body, headers) {
    const verifiedBy = {};
    for (const [name, wh] of secrets) {
      try {
        wh.verify(body, headers);
        verifiedBy[name] = true;
      } catch (e) {
        verifiedBy[name] = e.message || String(e);
      }
    }
    return verifiedBy;
  }

  function finish(res, rec, spec) {
    const status = spec.status ?? 200;
    const body = spec.body ?? '';
    rec.answered = { status, at: Date.now() };
    if (res.destroyed) return;
    res.writeHead(status, { 'content-type': 'text/plain', ...(spec.headers || {}) });
    res.end(body);
    notify();
  }

  function onRequest(req, res) {
    const chunks = [];
    let size = 0;
    req.on('data', (c) => {
      size += c.length;
      if (size <= MAX_BODY) chunks.push(c);
    });
    req.on('end', () => {
      const body = Buffer.concat(chunks).toString('utf8');
      let envelope = null;
      try { envelope = JSON.parse(body); } catch { /* recorded as null: a test asserts on it */ }
      const verifiedBy = verifyAll(body, req.headers);
      const rec = {
        at: Date.now(), method: req.method, path: req.url, headers: { ...req.headers }, body, envelope,
        verifiedBy, verified: Object.values(verifiedBy).some((v) => v === true), answered: null,
      };
      requests.push(rec);
      let spec;
      try { spec = answerWith(rec) || {}; } catch (e) { spec = { status: 500, body: String(e) }; }
      rec.spec = spec;
      if (spec.hold) {
        const h = { rec, release: (s = {}) => { held.delete(h); finish(res, rec, s); } };
        held.add(h);
        res.on('close', () => held.delete(h));
        notify();
      } else if (spec.delayMs) {
        notify();
        setTimeout(() => finish(res, rec, spec), spec.delayMs);
      } else {
        finish(res, rec, spec);
      }
    });
  }

  function listen(p) {
    return new Promise((resolve, reject) => {
      const s = http.createServer(onRequest);
      s.keepAliveTimeout = 5000;
      s.on('connection', (sock) => { sockets.add(sock); sock.on('close', () => sockets.delete(sock)); });
      s.once('error', reject);
      s.listen(p, '127.0.0.1', () => { s.off('error', reject); resolve(s); });
    });
  }

  server = await listen(port);
  const boundPort = server.address().port;

  const rx = {
    port: boundPort,
    url: `http://127.0.0.1:${boundPort}/hooks`,
    requests,
    /** Verify every later request with this secret too (whsec_..., as the API shows it). */
    trust(name, secret) { secrets.set(name, new Webhook(secret)); return rx; },
    /** How later requests are answered: a spec object, or a function (rec) -> spec. */
    answer(specOrFn) { answerWith = typeof specOrFn === 'function' ? specOrFn : () => specOrFn; return rx; },
    /** The requests held so far (each {rec, release(spec)}). */
    held: () => [...held],
    /** Answers every held request with spec (default 200). */
    releaseAll(spec = {}) { for (const h of [...held]) h.release(spec); },
    /** The envelopes that arrived (parsed bodies), in arrival order. */
    envelopes: () => requests.map((r) => r.envelope).filter(Boolean),
    /** The distinct event ids that arrived. */
    ids: () => new Set(requests.map((r) => r.envelope && r.envelope.id).filter(Boolean)),
    /** Resolves with fn(rx) once it is truthy (checked on every request and answer); rejects after timeoutMs. */
    waitFor(fn, timeoutMs = 10_000, what = 'a condition') {
      return new Promise((resolve, reject) => {
        const check = () => {
          let v;
          try { v = fn(rx); } catch (e) { done(); reject(e); return true; }
          if (v) { done(); resolve(v); return true; }
          return false;
        };
        const timer = setTimeout(() => {
          done();
          const seen = requests.map((r) => `${r.envelope ? r.envelope.type : '?'}:${r.answered ? r.answered.status : 'held'}`);
          reject(new Error(`receiver: ${what} not reached within ${timeoutMs} ms; ${requests.length} requests: ${seen.join(', ')}`));
        }, timeoutMs);
        const done = () => { clearTimeout(timer); waiters.delete(check); };
        if (!check()) waiters.add(check);
      });
    },
    /** Goes down: stops listening and cuts every open connection (held requests included). */
    async down() {
      if (!server) return;
      const s = server;
      server = null;
      held.clear();
      const closed = new Promise((r) => s.close(r));
      for (const sock of sockets) sock.destroy();
      await closed;
    },
    /** Comes back on the same port. */
    async up() {
      if (!server) server = await listen(boundPort);
    },
    async close() { await rx.down(); waiters.clear(); },
  };
  return rx;
}
