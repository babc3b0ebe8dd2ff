// Reconnect delays for both clients: exponential from base to cap, with 0-100 % random jitter
// (docs/protocol.md: retry after Retry-After plus jitter, doubling up to 30 s).
export class Backoff {
  private attempt = 0;
  constructor(private readonly baseMs = 250, private readonly capMs = 30000) {}
  /** The next delay in ms; at least minMs (a server's Retry-After or retry_ms). */
  next(minMs = 0): number {
    const exp = Math.min(this.capMs, this.baseMs * 2 ** this.attempt);
    this.attempt++;
    return Math.max(minMs, exp) * (1 + Math.random());
  }
  reset(): void {
    this.attempt = 0;
  }
}
