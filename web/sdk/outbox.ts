// Sequence numbers and the frames the relay has not acknowledged yet (docs/protocol.md,
// "Sequence numbers"). Frames are numbered when sealed, compressed once (asynchronously, in
// order), sent in seq order, and kept until acked so that they can be resent after a reconnect,
// a `resend` or a `slow_down`. Bounded: past MAX_BYTES the outbox is dropped and the page is
// sent again as a fresh snapshot (the relay accepts a snapshot after a gap).
import { KIND_EVENT, KIND_SNAPSHOT, encodeFrame, encodePayload } from '../protocol';
import type { SealedBatch } from './batcher';

export const MAX_BYTES = 8 * 1024 * 1024;
/** Compression thresholds: a snapshot (large, rare, replayed to every late agent) from 1 KiB; an
 * event frame only from 32 KiB. Compressing each small event frame cost the page's main thread
 * more than the rest of the transport together (bench/web: ~2 ms a frame, 4 of the 8 % added). */
export const COMPRESS_SNAPSHOT_FROM = 1024;
export const COMPRESS_EVENTS_FROM = 32 * 1024;

interface Entry {
  seq: number;
  kind: number;
  bytes: Uint8Array | null; // null while compressing
  sent: boolean;
}

export interface OutboxHooks {
  /** Sends one frame; false when the socket cannot take it now. */
  send(frame: Uint8Array): boolean;
  /** The page must be sent again from a fresh snapshot. */
  needSnapshot(): void;
  /** nextSeq changed (persist it). */
  seqChanged(nextSeq: number): void;
  /** A frame larger than the relay's limit cannot be sent (it is dropped). */
  tooLarge(seq: number, bytes: number): void;
}

export class Outbox {
  private entries: Entry[] = [];
  private bytes = 0;
  private chain: Promise<void> = Promise.resolve();
  private pausedUntil = 0;
  private resumeTimer: ReturnType<typeof setTimeout> | null = null;
  private online = false;
  maxFrameBytes = 1024 * 1024;
  framesSent = 0;

  constructor(public nextSeq: number, private readonly hooks: OutboxHooks) {}

  /** Numbers a batch and queues it; it is sent once compressed, in order. */
  add(b: SealedBatch): void {
    const e: Entry = { seq: this.nextSeq++, kind: b.snapshot ? KIND_SNAPSHOT : KIND_EVENT, bytes: null, sent: false };
    this.hooks.seqChanged(this.nextSeq);
    this.entries.push(e);
    this.chain = this.chain.then(async () => {
      const from = e.kind === KIND_SNAPSHOT ? COMPRESS_SNAPSHOT_FROM : COMPRESS_EVENTS_FROM;
      const { payload, flags } = await encodePayload(b.json, from).catch(() => ({
        payload: new TextEncoder().encode(b.json),
        flags: 0,
      }));
      e.bytes = encodeFrame({ kind: e.kind as 1 | 2, flags, seq: e.seq }, payload);
      this.bytes += e.bytes.byteLength;
      if (e.bytes.byteLength > this.maxFrameBytes) {
        this.drop(e);
        this.hooks.tooLarge(e.seq, e.bytes.byteLength);
        return;
      }
      if (this.bytes > MAX_BYTES) {
        this.reset();
        this.hooks.needSnapshot();
        return;
      }
      this.pump();
    });
  }

  /** Resolves once every frame added so far is encoded (and sent, if it could be). */
  settled(): Promise<void> {
    return this.chain;
  }

  /** The socket is open (after hello) or closed. */
  setOnline(on: boolean): void {
    this.online = on;
    if (!on) for (const e of this.entries) e.sent = false;
    else this.pump();
  }

  /** The relay holds everything up to seq. */
  ack(seq: number): void {
    while (this.entries.length && this.entries[0].seq <= seq && this.entries[0].bytes) {
      this.bytes -= this.entries[0].bytes.byteLength;
      this.entries.shift();
    }
  }

  /**
   * After `hello` (have, next_seq): true when the outbox can continue the relay's history
   * (resending from have + 1, or from a snapshot after have); false when a fresh snapshot is
   * needed (the outbox is then emptied and nextSeq moved past the relay's).
   */
  resync(have: number, relayNext: number): boolean {
    this.ack(have);
    const first = this.entries[0];
    if (first ? first.seq === have + 1 || (first.kind === KIND_SNAPSHOT && first.seq > have) : this.nextSeq === have + 1) {
      for (const e of this.entries) e.sent = false;
      return true;
    }
    this.reset();
    this.nextSeq = Math.max(this.nextSeq, relayNext, have + 1);
    this.hooks.seqChanged(this.nextSeq);
    return false;
  }

  /** `resend` / `slow_down`: send again from seq `from`, after delayMs. False if not held. */
  rewind(from: number, delayMs = 0): boolean {
    const i = this.entries.findIndex((e) => e.seq === from);
    if (i < 0) {
      if (from >= this.nextSeq) return true; // nothing after it was sent yet
      this.reset();
      return false;
    }
    for (let k = i; k < this.entries.length; k++) this.entries[k].sent = false;
    if (delayMs > 0) {
      this.pausedUntil = Date.now() + delayMs;
      if (this.resumeTimer) clearTimeout(this.resumeTimer);
      this.resumeTimer = setTimeout(() => {
        this.resumeTimer = null;
        this.pump();
      }, delayMs);
    } else {
      this.pump();
    }
    return true;
  }

  /** Sends every compressed, unsent frame in order, unless paused or offline. */
  pump(): void {
    if (!this.online || Date.now() < this.pausedUntil) return;
    for (const e of this.entries) {
      if (!e.bytes) return; // the next in order is still compressing
      if (e.sent) continue;
      if (!this.hooks.send(e.bytes)) return;
      e.sent = true;
      this.framesSent++;
    }
  }

  /** Forgets every frame (a new snapshot will replace the page). */
  reset(): void {
    this.entries = [];
    this.bytes = 0;
  }

  get pending(): number {
    return this.entries.length;
  }

  private drop(e: Entry): void {
    const i = this.entries.indexOf(e);
    if (i >= 0) this.entries.splice(i, 1);
    if (e.bytes) this.bytes -= e.bytes.byteLength;
  }
}
