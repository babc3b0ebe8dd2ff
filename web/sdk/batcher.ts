// rrweb events -> frames. At most one frame every BATCH_MS (or one per BATCH_BYTES of JSON): the
// first change after a quiet period leaves at once (in the next task, with whatever the same
// task changed), later ones wait for the rest of the window. Sparse changes thus cost no delay,
// busy pages no more frames. A full snapshot (rrweb's Meta event, then the FullSnapshot) always
// starts a frame of its own kind, so that the relay can start a new history there.

export const BATCH_MS = 50;
export const BATCH_BYTES = 64 * 1024;

export interface SealedBatch {
  snapshot: boolean;
  json: string; // a JSON array of events
  count: number;
}

export class Batcher {
  private parts: string[] = [];
  private bytes = 0;
  private snapshot = false;
  private timer: ReturnType<typeof setTimeout> | null = null;
  private lastFlush = -Infinity;

  constructor(
    private readonly seal: (b: SealedBatch) => void,
    private readonly now: () => number = () => performance.now(),
  ) {}

  /** Adds one event (serialized once, here). */
  push(e: { type: number }): void {
    if (e.type === 4) {
      // Meta opens a full snapshot: whatever came before is one last event frame.
      this.flush();
      this.snapshot = true;
    }
    const s = JSON.stringify(e);
    this.parts.push(s);
    this.bytes += s.length + 1;
    if (e.type === 2 || this.bytes >= BATCH_BYTES) {
      this.flush(); // a snapshot goes out at once: an agent is waiting for it
    } else if (this.timer === null) {
      const wait = Math.max(0, BATCH_MS - (this.now() - this.lastFlush));
      this.timer = setTimeout(() => this.flush(), wait);
    }
  }

  flush(): void {
    if (this.timer !== null) {
      clearTimeout(this.timer);
      this.timer = null;
    }
    if (this.parts.length === 0) return;
    this.lastFlush = this.now();
    const b = { snapshot: this.snapshot, json: `[${this.parts.join(',')}]`, count: this.parts.length };
    this.parts = [];
    this.bytes = 0;
    this.snapshot = false;
    this.seal(b);
  }

  /** Drops what is pending (the session ended). */
  discard(): void {
    if (this.timer !== null) clearTimeout(this.timer);
    this.timer = null;
    this.parts = [];
    this.bytes = 0;
    this.snapshot = false;
  }
}
