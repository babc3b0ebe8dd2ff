// Relay client helpers for the tests (docs/protocol.md is the contract).
//
// The token travels as ?access_token=<JWT> (or, with {tokenVia: 'header'}, as Authorization:
// Bearer); visitors offer the subprotocol cobrowse.visitor.v1, agents cobrowse.v1.
//
//   const v = await connectVisitor(relayUrl, session.visitor_token);      // v.hello: the hello
//   const a = await connectAgent(relayUrl, agentToken, { resume: 41 });
//   const msg = await a.nextJson('reset');                                // waits for a message
//   const f = await a.nextFrame();                                        // {seq, kind, raw, ...}
//   const r = await rejection(relayUrl, 'garbage');                       // {status, headers, body}
//
// Frames are binary messages: a 16-byte header (version u8 = 1, kind u8: 1 snapshot / 2 event,
// flags u16, reserved u32, seq u64, big-endian) and an opaque payload.

import assert from 'node:assert/strict';
import { createHmac } from 'node:crypto';
import WebSocket from 'ws';
import {
  SUBPROTOCOL, VISITOR_SUBPROTOCOL, KIND_SNAPSHOT, KIND_EVENT, HEADER_BYTES, sleep, encodeFrame,
  decodeFrame, payloadFor, md5,
} from './frames.mjs';

// Frames and the visitor page live in their own files; the tests import everything from here.
export * from './frames.mjs';
export * from './page.mjs';

// ---------------------------------------------------------------------------------------------
// JWT crafting (for the bad-token tests)

const b64u = (x) => Buffer.from(typeof x === 'string' ? x : JSON.stringify(x)).toString('base64url');

/** Splits a JWT into decoded {header, payload} and its raw parts. */
export function parseJwt(token) {
  const [h, p, s] = token.split('.');
  return {
    header: JSON.parse(Buffer.from(h, 'base64url').toString('utf8')),
    payload: JSON.parse(Buffer.from(p, 'base64url').toString('utf8')),
    parts: [h, p, s],
  };
}

/** signJwt(header, payload, key, hash='sha256'|'sha512'|null) -> compact JWT (null: no signature) */
export function signJwt(header, payload, key, hash = 'sha256') {
  const input = `${b64u(header)}.${b64u(payload)}`;
  if (hash === null) return `${input}.`;
  return `${input}.${createHmac(hash, key).update(input).digest('base64url')}`;
}

// ---------------------------------------------------------------------------------------------
// Client

/**
 * One relay connection. Every incoming message becomes an item, in arrival order:
 *   {t: 'frame', seq, kind, flags, version, reserved, len, raw (Buffer, unless record 'meta'), md5 (meta)}
 *   {t: 'json', msg}        a text message (parsed JSON)
 *   {t: 'text', text}       a text message that is not JSON
 *   {t: 'close', code, reason}
 * `items` keeps them all; next() consumes from a separate queue, so a test can wait for one
 * message and still inspect everything afterwards.
 */
export class RelayClient {
  constructor(ws, { record = 'full', queue = true, label = '' } = {}) {
    this.ws = ws;
    this.label = label;
    this.record = record;
    this.useQueue = queue;
    this.items = [];
    this.queue = [];
    this.waiters = new Set();
    this.listeners = new Set();
    this.closeInfo = null;
    this.lastSeq = 0; // highest frame seq received (any kind)
    this.frameCount = 0;
    this.hello = null;
    this.closed = new Promise((resolve) => { this._resolveClosed = resolve; });
    ws.on('message', (data, isBinary) => this._onMessage(data, isBinary));
    ws.on('close', (code, reason) => {
      this.closeInfo = { code, reason: reason.toString('utf8'), at: Date.now() };
      this._push({ t: 'close', code, reason: this.closeInfo.reason, at: this.closeInfo.at });
      this._resolveClosed(this.closeInfo);
    });
    ws.on('error', (err) => { this.error = err; });
  }

  _onMessage(data, isBinary) {
    const buf = Array.isArray(data) ? Buffer.concat(data) : Buffer.from(data);
    let item;
    if (isBinary) {
      let h;
      try { h = decodeFrame(buf); } catch (e) { h = { version: -1, kind: -1, flags: 0, reserved: 0, seq: -1 }; }
      item = { t: 'frame', seq: h.seq, kind: h.kind, flags: h.flags, version: h.version, reserved: h.reserved, len: buf.length };
      if (this.record === 'meta') item.md5 = md5(buf);
      else item.raw = buf;
      this.frameCount++;
      if (typeof h.seq === 'number' && h.seq > this.lastSeq) this.lastSeq = h.seq;
    } else {
      const text = buf.toString('utf8');
      try { item = { t: 'json', msg: JSON.parse(text) }; } catch { item = { t: 'text', text }; }
    }
    item.at = Date.now();
    this._push(item);
  }

  _push(item) {
    this.items.push(item);
    for (const fn of this.listeners) fn(item);
    if (this.useQueue) this.queue.push(item);
    for (const w of [...this.waiters]) w();
  }

  /** Calls fn(item) for every later item. Returns an unsubscribe function. */
  onItem(fn) { this.listeners.add(fn); return () => this.listeners.delete(fn); }

  /**
   * Waits for the first queued item matching pred (removed from the queue) and returns it.
   * Rejects after timeoutMs, or when the connection closed and no queued item matches.
   */
  next(pred = () => true, timeoutMs = 5000, what = 'a message') {
    return new Promise((resolve, reject) => {
      const check = () => {
        const i = this.queue.findIndex(pred);
        if (i >= 0) {
          const [item] = this.queue.splice(i, 1);
          done();
          resolve(item);
          return true;
        }
        if (this.closeInfo) {
          done();
          reject(new Error(`${this.label || 'client'}: closed (${this.closeInfo.code} ${this.closeInfo.reason}) while waiting for ${what}; got: ${this.describe()}`));
          return true;
        }
        return false;
      };
      const timer = setTimeout(() => {
        done();
        reject(new Error(`${this.label || 'client'}: no ${what} within ${timeoutMs} ms; got: ${this.describe()}`));
      }, timeoutMs);
      const done = () => { clearTimeout(timer); this.waiters.delete(check); };
      if (!check()) this.waiters.add(check);
    });
  }

  /** The next text message of this type (JSON object). */
  async nextJson(type, timeoutMs = 5000, pred = () => true) {
    const item = await this.next((i) => i.t === 'json' && i.msg && i.msg.type === type && pred(i.msg), timeoutMs, `a "${type}" message`);
    return item.msg;
  }

  /** The next binary frame. */
  nextFrame(timeoutMs = 5000) {
    return this.next((i) => i.t === 'frame', timeoutMs, 'a binary frame');
  }

  /** The close (code, reason), waiting up to timeoutMs. */
  async nextClose(timeoutMs = 5000) {
    const item = await this.next((i) => i.t === 'close', timeoutMs, 'the close');
    return { code: item.code, reason: item.reason, at: item.at };
  }

  /** Resolves when fn(this) is truthy (checked on every item); rejects after timeoutMs. */
  waitFor(fn, timeoutMs = 5000, what = 'a condition') {
    return new Promise((resolve, reject) => {
      const check = () => {
        let v;
        try { v = fn(this); } catch (e) { done(); reject(e); return true; }
        if (v) { done(); resolve(v); return true; }
        if (this.closeInfo) {
          done();
          reject(new Error(`${this.label || 'client'}: closed (${this.closeInfo.code} ${this.closeInfo.reason}) while waiting for ${what}; ${this.describe()}`));
          return true;
        }
        return false;
      };
      const timer = setTimeout(() => { done(); reject(new Error(`${this.label || 'client'}: ${what} not reached within ${timeoutMs} ms; ${this.describe()}`)); }, timeoutMs);
      const done = () => { clearTimeout(timer); this.waiters.delete(check); };
      if (!check()) this.waiters.add(check);
    });
  }

  /** Waits until a frame with seq >= seq arrived. */
  waitForSeq(seq, timeoutMs = 5000) {
    return this.waitFor((c) => c.lastSeq >= seq, timeoutMs, `frame seq ${seq}`);
  }

  get frames() { return this.items.filter((i) => i.t === 'frame'); }
  get jsons() { return this.items.filter((i) => i.t === 'json').map((i) => i.msg); }
  jsonOf(type) { return this.jsons.filter((m) => m.type === type); }

  /** A short account of what arrived (for assertion messages). */
  describe(max = 12) {
    const parts = [];
    let frames = null;
    const flush = () => { if (frames) { parts.push(`frames ${frames.first}..${frames.last} (${frames.n})`); frames = null; } };
    for (const i of this.items) {
      if (i.t === 'frame') {
        if (frames && i.seq === frames.last + 1) { frames.last = i.seq; frames.n++; }
        else { flush(); frames = { first: i.seq, last: i.seq, n: 1 }; }
      } else {
        flush();
        parts.push(i.t === 'json' ? JSON.stringify(i.msg).slice(0, 160) : i.t === 'close' ? `close ${i.code} ${i.reason}` : `text ${JSON.stringify(i.text.slice(0, 80))}`);
      }
    }
    flush();
    const shown = parts.length > max ? [...parts.slice(0, 4), `... ${parts.length - max} more ...`, ...parts.slice(-(max - 4))] : parts;
    return `[${shown.join(', ')}]${this.closeInfo ? '' : ' (open)'}`;
  }

  get open() { return this.ws.readyState === WebSocket.OPEN; }
  send(obj) { this.ws.send(JSON.stringify(obj)); }
  /** Sends a text message with these exact bytes (e.g. invalid UTF-8). */
  sendText(bufOrString) { this.ws.send(bufOrString, { binary: false }); }
  sendBinary(buf) { this.ws.send(buf, { binary: true }); }
  sendFrame(f) { this.sendBinary(encodeFrame(f)); }
  /** Stops reading from the TCP socket (the kernel buffers fill, then the relay's queue). */
  pause() { this.ws._socket.pause(); }
  resume() { this.ws._socket.resume(); }
  close(code = 1000, reason) { try { this.ws.close(code, reason); } catch { /* already closed */ } return this.closed; }
  /** Drops the TCP connection without a close handshake. */
  terminate() { this.ws.terminate(); return this.closed; }
  /** Resolves when the client's send buffer is below `bytes` (backpressure for bulk senders). */
  async drain(bytes = 1 << 20) {
    while (this.ws.readyState === WebSocket.OPEN && this.ws.bufferedAmount > bytes) await sleep(1);
  }
}

/** Thrown by connect*() when the relay answers the handshake with an HTTP error. */
export class HandshakeRejected extends Error {
  constructor(r) {
    super(`handshake rejected: ${r.status} ${r.text.slice(0, 300)}`);
    this.status = r.status;
    this.headers = r.headers;
    this.body = r.body;
    this.text = r.text;
  }
}

/**
 * handshake(relayUrl, token, opts) -> {client} | {rejected: {status, headers, body, text}}
 *
 * opts:
 *   resume        ?resume= value (any string or number)
 *   tokenVia      'query' (default: ?access_token=<jwt>, as browsers do) or 'header'
 *                 (Authorization: Bearer <jwt>)
 *   protocols     the offered subprotocols (default ['cobrowse.v1'])
 *   headers       extra request headers
 *   record, queue, label: see RelayClient
 *   timeoutMs     handshake timeout (default 10 s)
 */
export function handshake(relayUrl, token, opts = {}) {
  const { resume, tokenVia = 'query', protocols = [SUBPROTOCOL], headers = {}, timeoutMs = 10_000, ...clientOpts } = opts;
  const url = new URL(relayUrl);
  if (token && tokenVia === 'query') url.searchParams.set('access_token', token);
  if (resume !== undefined && resume !== null) url.searchParams.set('resume', String(resume));
  const hdrs = { ...headers };
  const protos = protocols;
  if (token && tokenVia === 'header') hdrs.Authorization = `Bearer ${token}`;
  return new Promise((resolve, reject) => {
    let settled = false;
    const ws = new WebSocket(url.toString(), protos, {
      headers: hdrs, perMessageDeflate: false, handshakeTimeout: timeoutMs, maxPayload: 512 * 1024 * 1024,
    });
    const client = new RelayClient(ws, clientOpts);
    ws.on('unexpected-response', (req, res) => {
      const chunks = [];
      res.on('data', (c) => chunks.push(c));
      res.on('end', () => {
        const text = Buffer.concat(chunks).toString('utf8');
        let body = null;
        try { body = JSON.parse(text); } catch { /* not JSON */ }
        settled = true;
        resolve({ rejected: { status: res.statusCode, headers: res.headers, body, text } });
        try { ws.terminate(); } catch { /* gone */ }
      });
      res.on('error', () => {});
    });
    ws.once('open', () => {
      settled = true;
      resolve({ client });
    });
    ws.on('error', (err) => {
      if (!settled) { settled = true; reject(err); }
    });
  });
}

async function connect(relayUrl, token, opts, role) {
  const { hello = true, helloTimeoutMs = 5000, ...rest } = opts;
  const protocols = rest.protocols || [role === 'visitor' ? VISITOR_SUBPROTOCOL : SUBPROTOCOL];
  const r = await handshake(relayUrl, token, { label: role, ...rest, protocols });
  if (r.rejected) throw new HandshakeRejected(r.rejected);
  const c = r.client;
  assert.equal(c.ws.protocol, protocols[0], `the relay must answer with the subprotocol offered, ${protocols[0]}`);
  if (hello) {
    await c.waitFor((x) => x.items.length > 0, helloTimeoutMs, 'the hello');
    const first = c.items[0];
    if (c.queue[0] === first) c.queue.shift();
    assert.ok(first.t === 'json' && first.msg.type === 'hello',
      `${role}: the first message must be a hello, got ${JSON.stringify(first.msg ?? first)}`);
    assert.equal(first.msg.role, role, `${role}: hello.role`);
    c.hello = first.msg;
  }
  return c;
}

/** connectVisitor(relayUrl, visitorToken, {resume, ...}) -> RelayClient with .hello (throws HandshakeRejected).
 * Offers cobrowse.visitor.v1 (as docs/protocol.md asks of visitors) unless opts.protocols says otherwise. */
export function connectVisitor(relayUrl, token, opts = {}) { return connect(relayUrl, token, opts, 'visitor'); }
/** connectAgent(relayUrl, agentToken, {resume, ...}) -> RelayClient with .hello (throws HandshakeRejected) */
export function connectAgent(relayUrl, token, opts = {}) { return connect(relayUrl, token, opts, 'agent'); }

/** Asserts that the handshake is refused; returns {status, headers, body, text}. */
export async function rejection(relayUrl, token, opts = {}) {
  const r = await handshake(relayUrl, token, opts);
  if (r.client) {
    const got = r.client.describe();
    r.client.terminate();
    assert.fail(`expected the handshake to be refused, but it was accepted (${got})`);
  }
  return r.rejected;
}

/** Asserts a refusal's status and problem+json body (type, title, status, detail, code); for
 * 429/503 also a Retry-After of whole seconds >= 1. */
export function expectRejection(rej, status, code, what = '') {
  const w = what ? `${what}: ` : '';
  assert.equal(rej.status, status, `${w}expected ${status} ${code}, got ${rej.status} ${rej.text.slice(0, 300)}`);
  // RFC 9457, like the REST API's errors (docs/protocol.md "Connecting").
  assert.match(String(rej.headers['content-type']), /^application\/problem\+json/, `${w}content-type`);
  assert.ok(rej.body && typeof rej.body === 'object', `${w}the body must be a problem+json object: ${rej.text.slice(0, 300)}`);
  assert.equal(rej.body.code, code, `${w}code: ${rej.text.slice(0, 300)}`);
  assert.equal(rej.body.status, status, `${w}status in the body: ${rej.text.slice(0, 300)}`);
  assert.equal(typeof rej.body.type, 'string', `${w}type: ${rej.text.slice(0, 300)}`);
  assert.equal(typeof rej.body.title, 'string', `${w}title: ${rej.text.slice(0, 300)}`);
  assert.equal(typeof rej.body.detail, 'string', `${w}detail: ${rej.text.slice(0, 300)}`);
  if (status === 429 || status === 503) {
    const ra = rej.headers['retry-after'];
    assert.match(String(ra), /^[1-9][0-9]*$/, `${w}Retry-After must be whole seconds >= 1, got ${ra}`);
  }
  return rej.body;
}

/** Retries a connect on 429/503 honouring Retry-After (plus jitter), up to deadlineMs. */
export async function connectWithRetry(fn, { deadlineMs = 20_000, maxWaitMs = 2000 } = {}) {
  const end = Date.now() + deadlineMs;
  let attempts = 0;
  for (;;) {
    attempts++;
    try {
      const c = await fn();
      c.attempts = attempts;
      return c;
    } catch (e) {
      if (!(e instanceof HandshakeRejected) || ![429, 503].includes(e.status) || Date.now() > end) throw e;
      const ra = Number(e.headers['retry-after']) || 1;
      await sleep(Math.min(ra * 1000, maxWaitMs) * (0.2 + Math.random() * 0.8));
    }
  }
}
