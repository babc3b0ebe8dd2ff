// The visitor's side of a page (an outbox that follows hello/ack/resend/slow_down, as the SDK
// must) and the agent's view of what it received, with a check that it never saw a gap.

import assert from 'node:assert/strict';
import { encodeFrame, md5, KIND_SNAPSHOT, KIND_EVENT } from './frames.mjs';

// ---------------------------------------------------------------------------------------------
// Visitor page: an outbox-keeping sender, as an SDK would be

/**
 * A visitor's page: assigns seqs, keeps every frame until acked (outbox), resends from where the
 * relay asks (resend, slow_down), and optionally answers snapshot_request with a snapshot.
 *
 *   const page = new VisitorPage();
 *   page.attach(visitorClient);
 *   page.snapshot(payload); page.event(payload); ...
 *   await page.acked(page.lastSeq);
 *   // reconnect: page.attach(newClient) (resends from hello.have + 1)
 */
export class VisitorPage {
  constructor({ keep = true, autoSnapshot = null, nextSeq = 1 } = {}) {
    this.keep = keep;                 // keep every frame sent in this.bySeq (seq -> Buffer)
    this.autoSnapshot = autoSnapshot; // seq => payload, used on snapshot_request
    this.nextSeq = nextSeq;
    this.outbox = new Map();          // seq -> Buffer, not acked yet
    this.bySeq = new Map();
    this.md5BySeq = new Map();
    this.ackedSeq = 0;
    this.client = null;
    this.holding = false;             // a resend is pending: new frames wait in the outbox
    this.pendingFrom = null;
    this.timer = null;
    this.counts = { resend: 0, slow_down: 0, snapshot_request: 0, ack: 0 };
    this.slowDowns = [];
    this.snapshotRequests = [];
    this.ackWaiters = new Set();
  }

  get lastSeq() { return this.nextSeq - 1; }

  /** Uses this connection from now on; if it has a hello, resends from hello.have + 1. */
  attach(client, { resendFromHello = true } = {}) {
    if (this.unsub) this.unsub();
    this.client = client;
    clearTimeout(this.timer);
    this.timer = null;
    this.pendingFrom = null;
    this.holding = false;
    this.unsub = client.onItem((i) => { if (i.t === 'json') this._onJson(i.msg); });
    if (resendFromHello && client.hello) {
      const have = client.hello.have;
      if (have > this.ackedSeq) this._ack(have);
      this._sendFrom(have + 1);
    }
  }

  _ack(seq) {
    this.ackedSeq = Math.max(this.ackedSeq, seq);
    for (const s of this.outbox.keys()) {
      if (s <= seq) this.outbox.delete(s);
      else break; // insertion order is seq order
    }
    for (const w of [...this.ackWaiters]) w();
  }

  _onJson(m) {
    if (m.type === 'ack') { this.counts.ack++; this._ack(m.seq); }
    else if (m.type === 'resend') { this.counts.resend++; this._scheduleResend(m.from, 5); }
    else if (m.type === 'slow_down') {
      this.counts.slow_down++;
      this.slowDowns.push(m);
      // retry_after_ms, plus 2 ms: timers here may fire up to a millisecond early.
      this._scheduleResend(m.from, Math.max(1, Number(m.retry_after_ms) || 10) + 2);
    } else if (m.type === 'snapshot_request') {
      this.counts.snapshot_request++;
      this.snapshotRequests.push({ ...m, atSeq: this.lastSeq });
      if (this.autoSnapshot) this.snapshot(this.autoSnapshot(this.nextSeq));
    }
  }

  _scheduleResend(from, delayMs) {
    if (!(from > this.ackedSeq) || from > this.nextSeq) return; // stale or nonsense
    this.holding = true;
    this.pendingFrom = this.pendingFrom === null ? from : Math.min(this.pendingFrom, from);
    if (this.timer) return;
    this.timer = setTimeout(() => {
      this.timer = null;
      const f = this.pendingFrom;
      this.pendingFrom = null;
      this.holding = false;
      this._sendFrom(f);
    }, delayMs);
  }

  _sendFrom(from) {
    if (!this.client || !this.client.open) return;
    for (const [s, buf] of this.outbox) if (s >= from) this.client.sendBinary(buf);
  }

  /** Creates the next frame (kind 1 or 2), keeps it, and sends it unless a resend is pending. */
  frame(kind, payload, { send = true } = {}) {
    const seq = this.nextSeq++;
    const buf = encodeFrame({ kind, seq, payload });
    this.outbox.set(seq, buf);
    if (this.keep) this.bySeq.set(seq, buf);
    else this.md5BySeq.set(seq, md5(buf));
    if (send && !this.holding && this.client && this.client.open) this.client.sendBinary(buf);
    return seq;
  }
  snapshot(payload) { return this.frame(KIND_SNAPSHOT, payload); }
  event(payload) { return this.frame(KIND_EVENT, payload); }

  /** Resolves when the relay acked seq (default: everything created so far). */
  acked(seq = this.lastSeq, timeoutMs = 10_000) {
    return new Promise((resolve, reject) => {
      const check = () => {
        if (this.ackedSeq >= seq) { done(); resolve(this.ackedSeq); return true; }
        return false;
      };
      const timer = setTimeout(() => {
        done();
        reject(new Error(`visitor: seq ${seq} not acked within ${timeoutMs} ms (acked ${this.ackedSeq}, counts ${JSON.stringify(this.counts)}); ${this.client ? this.client.describe() : ''}`));
      }, timeoutMs);
      const done = () => { clearTimeout(timer); this.ackWaiters.delete(check); };
      if (!check()) this.ackWaiters.add(check);
    });
  }

  /** The exact bytes of frame seq (keep mode), or its md5 (meta mode). */
  sent(seq) { return this.keep ? this.bySeq.get(seq) : this.md5BySeq.get(seq); }

  detach() { if (this.unsub) this.unsub(); clearTimeout(this.timer); this.timer = null; this.client = null; }
}

// ---------------------------------------------------------------------------------------------
// What an agent saw

/**
 * Checks an agent's items against the ordering rules ("an agent is never handed a gap: frames
 * reach it in seq order, each once, or a reset comes first") and returns its page:
 *   {frames: [frame items accepted, in order], resets: [reset messages], waiting: n}
 * Rules: after a hello with resume "continue", the first frame is hello.from (when given); after
 * hello resume "reset", a reset must come before any frame; after reset{seq}, the next frame is the
 * snapshot (kind 1) with that seq; after waiting_snapshot, the next frame is a snapshot; otherwise
 * each frame is the previous seq + 1. `items` may span several connections (pass them
 * concatenated, each starting with its hello).
 */
export function agentView(items, what = 'agent') {
  const frames = [];
  const resets = [];
  let expected = null;   // next seq, or null: unknown
  let mustSnapshot = false;
  let needReset = false;
  let waiting = 0;
  let n = 0;
  for (const i of items) {
    n++;
    if (i.t === 'json') {
      const m = i.msg;
      if (m.type === 'hello') {
        if (m.resume === 'continue') {
          needReset = false;
          mustSnapshot = false;
          if (typeof m.from === 'number') expected = m.from;
        } else if (m.resume === 'reset') {
          needReset = true;
        }
      } else if (m.type === 'reset') {
        assert.equal(typeof m.seq, 'number', `${what}: reset.seq must be a number: ${JSON.stringify(m)}`);
        resets.push(m);
        needReset = false;
        expected = m.seq;
        mustSnapshot = true;
      } else if (m.type === 'waiting_snapshot') {
        waiting++;
        needReset = false;
        expected = null;
        mustSnapshot = true;
      }
    } else if (i.t === 'frame') {
      assert.ok(!needReset, `${what}: item ${n}: frame ${i.seq} before the reset announced by hello`);
      if (mustSnapshot) {
        assert.equal(i.kind, KIND_SNAPSHOT, `${what}: item ${n}: after reset/waiting_snapshot the next frame must be a snapshot, got kind ${i.kind} seq ${i.seq}`);
      }
      if (expected !== null) {
        assert.equal(i.seq, expected, `${what}: item ${n}: expected frame seq ${expected}, got ${i.seq} (kind ${i.kind})`);
      }
      frames.push(i);
      expected = i.seq + 1;
      mustSnapshot = false;
    }
  }
  return { frames, resets, waiting };
}

/** Asserts that frames are exactly seq from..to, byte-identical to page.sent(seq). */
export function assertFramesEqual(frames, page, from, to, what = 'agent') {
  const seqs = frames.map((f) => f.seq);
  const want = [];
  for (let s = from; s <= to; s++) want.push(s);
  if (seqs.length !== want.length || seqs.some((s, k) => s !== want[k])) {
    const firstBad = seqs.findIndex((s, k) => s !== want[k]);
    assert.fail(`${what}: expected frames ${from}..${to} (${want.length}), got ${seqs.length} frames` +
      (seqs.length ? ` ${seqs[0]}..${seqs[seqs.length - 1]}` : '') +
      (firstBad >= 0 ? `; first difference at index ${firstBad}: got ${seqs[firstBad]}, want ${want[firstBad]}` : ''));
  }
  for (const f of frames) {
    const sent = page.sent(f.seq);
    assert.ok(sent !== undefined, `${what}: frame ${f.seq} was never sent by the visitor`);
    if (f.raw) {
      if (!f.raw.equals(sent)) assert.fail(`${what}: frame ${f.seq} differs from what the visitor sent (${f.raw.length} vs ${Buffer.isBuffer(sent) ? sent.length : '?'} bytes)`);
    } else {
      const want5 = Buffer.isBuffer(sent) ? md5(sent) : sent;
      assert.equal(f.md5, want5, `${what}: frame ${f.seq} differs from what the visitor sent`);
    }
  }
}
