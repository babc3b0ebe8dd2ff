// The agent's relay connection: connect, hand binary frames and text messages to the owner,
// reconnect with backoff and `resume=<last seq applied>` after a drop, stop on final close codes.
import { Backoff, CLOSE, SUBPROTOCOL_AGENT, isFinalClose, parseMessage, relayUrl, retryAfterClose } from '../protocol';
import type { ControlAction, ToAgent } from '../protocol';

export type SocketState = 'connecting' | 'open' | 'reconnecting' | 'closed';

export interface SocketHooks {
  /** A binary message, in arrival order. */
  frame(data: ArrayBuffer): void;
  /** A parsed text message. */
  message(msg: ToAgent): void;
  state(s: SocketState): void;
  /** The socket stopped for good: code is the close code (4001, 4003, ...). */
  stopped(code: number, reason: string): void;
  /** The last seq applied (after pending frames settle), for resume. */
  resumeSeq(): Promise<number>;
  /** Called before a reconnect when the previous attempt never opened: may stop by returning false. */
  shouldRetry?(failures: number): Promise<boolean>;
}

export class RelaySocket {
  private ws: WebSocket | null = null;
  private backoff = new Backoff(250, 15000);
  private timer: ReturnType<typeof setTimeout> | null = null;
  private stoppedFor = false;
  private failures = 0; // consecutive attempts that never opened
  private opened = false;

  constructor(private readonly base: string, private readonly token: string, private readonly hooks: SocketHooks) {}

  start(): void {
    void this.connect(0, 'connecting');
  }

  /** Sends a control message; false when not connected. */
  send(msg: ControlAction): boolean {
    if (!this.ws || this.ws.readyState !== WebSocket.OPEN) return false;
    this.ws.send(JSON.stringify(msg));
    return true;
  }

  get isOpen(): boolean {
    return !!this.ws && this.ws.readyState === WebSocket.OPEN;
  }

  /** Drops the current connection and connects again at once (resume from hooks.resumeSeq). */
  restart(): void {
    if (this.stoppedFor) return;
    const ws = this.ws;
    this.ws = null;
    if (ws) {
      try {
        ws.close(1000);
      } catch {
        /* ignore */
      }
    }
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    void this.hooks.resumeSeq().then((seq) => this.connect(seq, 'reconnecting'));
  }

  /** Stops for good (session ended, viewer closed). */
  stop(): void {
    if (this.stoppedFor) return;
    this.stoppedFor = true;
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    const ws = this.ws;
    this.ws = null;
    if (ws && (ws.readyState === WebSocket.OPEN || ws.readyState === WebSocket.CONNECTING)) {
      try {
        ws.close(1000);
      } catch {
        /* ignore */
      }
    }
    this.hooks.state('closed');
  }

  private async connect(resumeFrom: number, state: SocketState): Promise<void> {
    if (this.stoppedFor) return;
    this.hooks.state(state);
    this.opened = false;
    let ws: WebSocket;
    try {
      ws = new WebSocket(relayUrl(this.base, this.token, resumeFrom), SUBPROTOCOL_AGENT);
    } catch (e) {
      console.warn('viewer: relay connect failed', e);
      this.schedule(0);
      return;
    }
    ws.binaryType = 'arraybuffer';
    this.ws = ws;
    ws.onopen = () => {
      if (this.ws !== ws) return;
      this.opened = true;
      this.failures = 0;
      this.backoff.reset();
      this.hooks.state('open');
    };
    ws.onmessage = (ev: MessageEvent) => {
      if (this.ws !== ws) return;
      if (typeof ev.data === 'string') {
        const msg = parseMessage<ToAgent>(ev.data);
        if (msg) this.hooks.message(msg);
        else console.warn('viewer: unparsable relay message');
      } else if (ev.data instanceof ArrayBuffer) {
        this.hooks.frame(ev.data);
      }
    };
    ws.onclose = (ev: CloseEvent) => {
      if (this.ws !== ws) return;
      this.ws = null;
      if (this.stoppedFor) return;
      if (isFinalClose(ev.code) || ev.code === CLOSE.TOKEN_EXPIRED || ev.code === CLOSE.NORMAL) {
        // 4003: the token expired; the viewer cannot mint a new one (the console must open a new
        // embed_url). 1000: the relay closed on purpose.
        this.stoppedFor = true;
        this.hooks.state('closed');
        this.hooks.stopped(ev.code, ev.reason);
        return;
      }
      if (!this.opened) this.failures++;
      this.schedule(retryAfterClose(ev.code, ev.reason));
    };
    ws.onerror = () => {
      /* onclose follows */
    };
  }

  private schedule(minMs: number): void {
    if (this.stoppedFor) return;
    this.hooks.state('reconnecting');
    const delay = this.backoff.next(minMs);
    this.timer = setTimeout(async () => {
      this.timer = null;
      if (this.stoppedFor) return;
      if (this.failures > 0 && this.hooks.shouldRetry) {
        const ok = await this.hooks.shouldRetry(this.failures);
        if (!ok || this.stoppedFor) return;
      }
      const seq = await this.hooks.resumeSeq();
      void this.connect(seq, 'reconnecting');
    }, delay);
  }
}
