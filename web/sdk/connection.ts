// The visitor's WebSocket to the relay: connect with the visitor token, resume with the last seq
// sent, reconnect with backoff and jitter (docs/protocol.md), stop on a final close code.
import { Backoff, CLOSE, SUBPROTOCOL_VISITOR, isFinalClose, parseMessage, relayUrl, retryAfterClose } from '../protocol';
import type { ToVisitor } from '../protocol';

export type ConnectionState = 'connecting' | 'open' | 'reconnecting' | 'closed';

export interface ConnectionHooks {
  message(m: ToVisitor): void;
  state(s: ConnectionState): void;
  /** The socket closed for good: code and reason (4001 session ended, 4002 replaced...). */
  final(code: number, reason: string): void;
  /** Before each reconnect: resolves false when the session is gone (no point retrying). */
  stillAlive(): Promise<boolean>;
  /** The seq to resume from (the last one sent), 0 if none. */
  resumeSeq(): number;
}

export class Connection {
  private ws: WebSocket | null = null;
  private backoff = new Backoff(250, 30000);
  private timer: ReturnType<typeof setTimeout> | null = null;
  private stopped = false;

  constructor(private readonly url: string, private readonly token: string, private readonly hooks: ConnectionHooks) {}

  start(): void {
    this.stopped = false;
    this.open();
  }

  /** Sends a binary frame or a text message; false when the socket is not open. */
  send(data: Uint8Array | string): boolean {
    if (!this.ws || this.ws.readyState !== WebSocket.OPEN) return false;
    this.ws.send(data);
    return true;
  }

  get bufferedAmount(): number {
    return this.ws?.bufferedAmount ?? 0;
  }

  stop(code: number = CLOSE.NORMAL): void {
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    const ws = this.ws;
    this.ws = null;
    if (ws && ws.readyState <= WebSocket.OPEN) ws.close(code);
    this.hooks.state('closed');
  }

  /** Drops the socket and reconnects (the browser's `online` event, tests); while waiting for a
   * retry, retries at once. */
  reconnectNow(): void {
    if (this.stopped) return;
    if (this.ws) {
      this.ws.close(CLOSE.NORMAL);
    } else if (this.timer) {
      clearTimeout(this.timer);
      this.timer = null;
      this.open();
    }
  }

  private open(): void {
    if (this.stopped) return;
    this.hooks.state(this.ws === null && this.backoffFresh ? 'connecting' : 'reconnecting');
    const ws = new WebSocket(relayUrl(this.url, this.token, this.hooks.resumeSeq()), SUBPROTOCOL_VISITOR);
    ws.binaryType = 'arraybuffer';
    this.ws = ws;
    let helloSeen = false;
    ws.onmessage = (ev) => {
      if (typeof ev.data !== 'string') return; // the relay sends visitors text only
      const m = parseMessage<ToVisitor>(ev.data);
      if (!m) return;
      if (m.type === 'hello') {
        helloSeen = true;
        this.backoff.reset();
        this.backoffFresh = false;
        this.hooks.state('open');
      }
      this.hooks.message(m);
    };
    ws.onclose = (ev) => {
      if (this.ws !== ws) return; // replaced or stopped
      this.ws = null;
      if (isFinalClose(ev.code) || ev.code === CLOSE.TOKEN_EXPIRED) {
        this.stopped = true;
        this.hooks.state('closed');
        this.hooks.final(ev.code, ev.reason);
        return;
      }
      this.hooks.state('reconnecting');
      const minMs = retryAfterClose(ev.code, ev.reason);
      const delay = helloSeen && minMs === 0 ? this.backoff.next(0) * 0.2 : this.backoff.next(minMs);
      this.timer = setTimeout(async () => {
        this.timer = null;
        if (this.stopped) return;
        // A refused handshake looks like any drop from here (browsers hide the HTTP status):
        // ask the API whether the session still exists before trying again.
        if (!helloSeen && !(await this.hooks.stillAlive())) {
          this.stopped = true;
          this.hooks.state('closed');
          this.hooks.final(CLOSE.SESSION_ENDED, 'session_ended');
          return;
        }
        this.open();
      }, delay);
    };
  }

  private backoffFresh = true;
}
