// rrweb events -> frames. Events are batched for up to BATCH_MS or BATCH_BYTES of JSON; a full
// snapshot (rrweb's Meta event, then the FullSnapshot) always starts a frame of its own kind, so
// that the relay can start a new history there.

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

  constructor(private readonly seal: (b: SealedBatch) => void) {}

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
      this.timer = setTimeout(() => this.flush(), BATCH_MS);
    }
  }

  flush(): void {
    if (this.timer !== null) {
      clearTimeout(this.timer);
      this.timer = null;
    }
    if (this.parts.length === 0) return;
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
