// The agent viewer: /viewer/{tenant_id}#token=<agent JWT> (docs/viewer.md).
// Wiring: token and session context (session.ts), relay connection (socket.ts), replay
// (replay.ts), agent tools (tools.ts), console bridge (bridge.ts), chrome and branding (ui.ts).
import { CLOSE, KIND_SNAPSHOT, decodeHeader, decodePayload, framePayload } from '../protocol';
import type { AgentRef, ControlAction, RemoteControl, ToAgent } from '../protocol';
import { Assets } from './assets';
import { Bridge } from './bridge';
import type { BridgeAction } from './bridge';
import { Replay } from './replay';
import type { RREvent } from './replay';
import { HttpError, absoluteRelayBase, endSession, fetchContext, takeTokenFromFragment } from './session';
import type { SessionContext } from './session';
import { RelaySocket } from './socket';
import type { SocketState } from './socket';
import { Tools } from './tools';
import type { ControlState, Mode } from './tools';
import { Ui } from './ui';
import type { ConnState } from './ui';

type EndKind = 'ended' | 'expired' | 'invalid' | 'error';

const REFUSED_TEXT: Record<string, string> = {
  remote_control_off: 'Remote control is not allowed for this session',
  no_consent: 'The visitor has not given you control',
  visitor_absent: 'The visitor is not connected',
  invalid: 'That action was not accepted',
  rate_limited: 'Too many actions: slow down a little',
};

class Viewer {
  private readonly ui: Ui;
  private readonly replay: Replay;
  private readonly tools: Tools;
  private readonly bridge: Bridge;
  private token: string | null = null;
  private ctx: SessionContext | null = null;
  private sock: RelaySocket | null = null;

  private sockState: SocketState = 'connecting';
  private everOpen = false;
  private visitor: 'connected' | 'disconnected' = 'disconnected';
  private control: ControlState = 'none';
  private controlAllowed = true;
  private ended: EndKind | null = null;
  private endReason = '';
  private waitingSnapshot = false;
  private others = new Map<string, string>();

  // Frames: decoded and applied strictly in arrival order through one promise chain.
  private chain: Promise<void> = Promise.resolve();
  private lastSeq = 0;
  private framesReceived = 0;
  private framesApplied = 0;
  private resetPending = false;
  private latencyMs: number | null = null;

  constructor() {
    const root = document.getElementById('app') ?? document.body;
    this.ui = new Ui(root, {
      mode: (m) => this.setMode(m),
      requestControl: () => this.requestControl(),
      releaseControl: () => this.releaseControl(),
      end: () => void this.end(),
    });
    this.replay = new Replay(this.ui.stage, this.ui.host);
    this.tools = new Tools(this.ui.overlay, this.replay, {
      send: (m) => this.send(m),
      hint: (t) => this.ui.toast(t),
    });
    this.replay.onLayout = () => this.tools.layout();
    this.replay.onPage = () => this.refresh();
    this.bridge = new Bridge((a) => this.action(a));
    this.refresh();
  }

  async start(token: string | null): Promise<void> {
    this.token = token;
    if (!this.token) {
      this.finish('invalid', 'This link is incomplete. Open the session again from your console.');
      return;
    }
    let attempt = 0;
    for (;;) {
      try {
        this.ctx = await fetchContext(this.token);
        break;
      } catch (e) {
        if (e instanceof HttpError && e.status >= 400 && e.status < 500) {
          if (e.status === 404 || e.code === 'session_ended') this.finish('ended', 'This session has ended.');
          else this.finish('expired', 'This link has expired or is not valid. Open the session again from your console.');
          return;
        }
        if (++attempt >= 5) {
          this.finish('error', 'The session could not be loaded. Check your connection and try again.');
          return;
        }
        await new Promise((r) => setTimeout(r, 500 * 2 ** attempt));
      }
    }
    const ctx = this.ctx;
    this.ui.branding(ctx.branding);
    this.bridge.setAllowedOrigins(ctx.allowed_origins);
    if (typeof ctx.proxy_base === 'string' && ctx.proxy_base) {
      try {
        const origins = [...(ctx.allowed_origins ?? []), ...(ctx.asset_origins ?? [])];
        this.replay.assets = new Assets(ctx.proxy_base, origins, (url) => this.send({ type: 'asset_request', url }));
      } catch (e) {
        console.warn('viewer: proxy_base', e); // the page shows with its own URLs
      }
    }
    this.controlAllowed = ctx.permissions?.remote_control !== 'off';
    if (ctx.status === 'ended') {
      this.finish('ended', 'This session has ended.');
      return;
    }
    let base: string;
    try {
      base = absoluteRelayBase(ctx.relay_url);
    } catch {
      this.finish('error', 'The session could not be loaded.');
      return;
    }
    this.sock = new RelaySocket(base, this.token, {
      frame: (d) => this.onFrame(d),
      message: (m) => this.onMessage(m),
      state: (s) => {
        this.sockState = s;
        if (s === 'open') this.everOpen = true;
        this.refresh();
      },
      stopped: (code, reason) => this.onStopped(code, reason),
      resumeSeq: async () => {
        await this.chain;
        return this.lastSeq;
      },
      shouldRetry: () => this.stillValid(),
    });
    this.sock.start();
    this.refresh();
  }

  // ---- frames -------------------------------------------------------------------------------

  private onFrame(data: ArrayBuffer): void {
    this.framesReceived++;
    const h = decodeHeader(data);
    if (!h) {
      console.warn('viewer: a binary message that is not a frame');
      return;
    }
    const payload = framePayload(data);
    this.chain = this.chain
      .then(async () => {
        if (this.ended) return;
        const isSnap = h.kind === KIND_SNAPSHOT;
        if (this.resetPending) {
          if (!isSnap) return; // the relay sends the snapshot first; nothing else applies
        } else if (h.seq <= this.lastSeq) {
          return; // a duplicate
        } else if (!isSnap && !this.replay.hasPage) {
          return; // events before the first snapshot cannot be applied
        } else if (!isSnap && h.seq !== this.lastSeq + 1) {
          console.warn(`viewer: gap before frame ${h.seq} (last ${this.lastSeq})`);
        }
        let events: RREvent[];
        try {
          events = (await decodePayload(payload, h.flags)) as RREvent[];
        } catch (e) {
          // A page we cannot complete: start over with a fresh snapshot.
          console.warn('viewer: undecodable frame', h.seq, e);
          this.lastSeq = 0;
          this.resetPending = true;
          this.sock?.restart();
          return;
        }
        let maxTs = 0;
        for (const ev of events) if (ev && typeof ev.timestamp === 'number' && ev.timestamp > maxTs) maxTs = ev.timestamp;
        if (maxTs > 0) this.latencyMs = Date.now() - maxTs;
        if (isSnap) {
          this.resetPending = false;
          this.waitingSnapshot = false;
          try {
            this.replay.snapshot(events);
          } catch (e) {
            console.error('viewer: cannot show the page', e);
            this.finish('error', 'The visitor’s page cannot be shown safely in this browser.');
            return;
          }
        } else {
          this.replay.events(events);
        }
        this.lastSeq = h.seq;
        this.framesApplied++;
        this.refresh();
      })
      .catch((e) => console.warn('viewer: frame', e));
  }

  // ---- control messages ---------------------------------------------------------------------

  private onMessage(m: ToAgent): void {
    switch (m.type) {
      case 'hello':
        this.visitor = m.visitor === 'connected' ? 'connected' : 'disconnected';
        if (m.permissions && m.permissions.remote_control === 'off') this.controlAllowed = false;
        this.setControl(this.fromRelay(m.remote_control));
        break;
      case 'reset':
        // Discard the page at the next snapshot: frames already queued ahead of this message
        // still apply first (the chain), and the old page stays visible until the new one.
        this.chain = this.chain.then(() => {
          this.resetPending = true;
        });
        break;
      case 'waiting_snapshot':
        this.waitingSnapshot = true;
        break;
      case 'visitor':
        this.visitor = m.state === 'connected' ? 'connected' : 'disconnected';
        if (this.visitor === 'disconnected' && this.control === 'pending') this.setControl('none');
        break;
      case 'consent': {
        const c = this.fromRelay(m.remote_control);
        const was = this.control;
        this.setControl(c);
        if (c === 'granted' && was !== 'granted') this.ui.toast('The visitor gave you control', 'ok');
        else if (c === 'denied') this.ui.toast('The visitor declined the control request', 'warn');
        else if (c === 'revoked' && was === 'granted') this.ui.toast('The visitor took back control', 'warn');
        break;
      }
      case 'refused': {
        if (m.action === 'asset_request') return; // the page stays without that stylesheet
        this.ui.toast(REFUSED_TEXT[m.reason] ?? 'That action was refused', 'warn');
        if (m.reason === 'remote_control_off') {
          this.controlAllowed = false;
          this.setControl('none');
        } else if (m.action === 'request_control') {
          this.setControl('none');
        } else if (m.reason === 'no_consent' && this.control === 'granted') {
          this.setControl('none');
        }
        break;
      }
      case 'session_ended':
        this.finish('ended', 'This session has ended.', m.reason);
        break;
      case 'agent_joined':
      case 'agent_left':
        this.onAgent(m.type === 'agent_joined', m.agent);
        break;
      case 'asset_ready':
        if (typeof m.url === 'string') this.replay.assets?.ready(m.url, this.replay.document());
        return; // nothing on screen changes
      case 'asset_unavailable':
        if (typeof m.url === 'string') this.replay.assets?.unavailable(m.url);
        return;
      default:
        break;
    }
    this.refresh();
  }

  private onAgent(joined: boolean, a: AgentRef | undefined): void {
    if (!a || typeof a.id !== 'string') return;
    if (this.ctx?.agent && a.id === this.ctx.agent.id) return; // another tab of ours
    const name = a.name || 'Another agent';
    if (joined) {
      if (!this.others.has(a.id)) this.ui.toast(`${name} joined`);
      this.others.set(a.id, name);
    } else {
      if (this.others.delete(a.id)) this.ui.toast(`${name} left`);
    }
    this.ui.setWatchers([...this.others.values()]);
  }

  private fromRelay(rc: RemoteControl | undefined): ControlState {
    return rc === 'granted' || rc === 'denied' || rc === 'revoked' ? rc : 'none';
  }

  private onStopped(code: number, reason: string): void {
    if (this.ended) return;
    if (code === CLOSE.TOKEN_EXPIRED) this.finish('expired', 'Your access to this session expired. Open it again from your console.');
    else if (code === CLOSE.SESSION_ENDED || code === CLOSE.NORMAL) this.finish('ended', 'This session has ended.', reason);
    else if (code === CLOSE.AGENT_LIMIT)
      this.finish('error', 'This session already has all the agents it may have. Try again when one leaves.', 'agent_limit');
    else this.finish('error', 'The connection was closed by the server.', String(code));
  }

  /** After a connection attempt failed: is the session still there? (false stops retrying) */
  private async stillValid(): Promise<boolean> {
    if (!this.token) return false;
    try {
      const ctx = await fetchContext(this.token);
      if (ctx.status === 'ended') {
        this.finish('ended', 'This session has ended.');
        return false;
      }
      return true;
    } catch (e) {
      if (e instanceof HttpError && (e.status === 401 || e.status === 403)) {
        this.finish('expired', 'Your access to this session expired. Open it again from your console.');
        return false;
      }
      if (e instanceof HttpError && e.status === 404) {
        this.finish('ended', 'This session has ended.');
        return false;
      }
      return true; // offline or a server hiccup: keep trying
    }
  }

  // ---- actions ------------------------------------------------------------------------------

  private send(m: ControlAction): boolean {
    if (this.ended || !this.sock) return false;
    return this.sock.send(m);
  }

  private setMode(m: Mode): void {
    this.tools.setMode(m);
    this.ui.setMode(m);
  }

  private setControl(c: ControlState): void {
    this.control = c;
    this.tools.control = c;
    this.ui.setControl(c, this.controlAllowed);
    this.refresh();
  }

  private requestControl(): void {
    if (this.ended) return;
    if (!this.controlAllowed) {
      this.ui.toast(REFUSED_TEXT.remote_control_off, 'warn');
      return;
    }
    if (this.control === 'granted' || this.control === 'pending') return;
    if (!this.send({ type: 'request_control' })) {
      this.ui.toast('Not connected: try again in a moment', 'warn');
      return;
    }
    this.setControl('pending');
  }

  private releaseControl(): void {
    if (this.ended) return;
    this.send({ type: 'release_control' });
    this.setControl('none');
    this.ui.toast('You released control');
  }

  private async end(): Promise<void> {
    if (this.ended || !this.token) return;
    try {
      await endSession(this.token);
    } catch (e) {
      console.warn('viewer: end', e);
      this.ui.toast('The session could not be ended: try again', 'warn');
      return;
    }
    this.finish('ended', 'You ended this session.', 'ended_by_agent');
  }

  private action(a: BridgeAction): void {
    if (a === 'end') void this.end();
    else if (a === 'request_control') this.requestControl();
    else if (a === 'release_control') {
      if (this.control === 'granted' || this.control === 'pending') this.releaseControl();
    } else if (a === 'status') this.postStatus(true);
  }

  private finish(kind: EndKind, text: string, reason = ''): void {
    if (this.ended) return;
    this.ended = kind;
    this.endReason = reason;
    this.sock?.stop();
    this.control = 'none';
    this.tools.control = 'none';
    this.tools.enabled = false;
    this.ui.setEnded();
    const title = kind === 'expired' ? 'Session expired' : kind === 'invalid' ? 'Link not valid' : kind === 'error' ? 'Disconnected' : 'Session ended';
    this.ui.showNotice(title, text, false, 'end');
    this.ui.showBanner(null);
    this.refresh();
  }

  // ---- derived state ------------------------------------------------------------------------

  connState(): ConnState {
    if (this.ended) return 'ended';
    if (this.sockState === 'reconnecting' || (this.sockState === 'closed' && this.everOpen)) return 'reconnecting';
    if (this.sockState !== 'open') return 'connecting';
    return this.visitor === 'connected' ? 'live' : 'visitor_away';
  }

  private postStatus(force = false): void {
    const state = this.ended ? 'ended' : this.replay.hasPage && this.visitor === 'connected' ? 'active' : 'waiting';
    this.bridge.status({ state, control: this.ended ? 'none' : this.control, visitor: this.visitor }, force);
  }

  private refresh(): void {
    const cs = this.connState();
    const hasPage = this.replay.hasPage;
    this.ui.setConn(cs, hasPage);
    const live = cs === 'live' && hasPage;
    this.tools.enabled = live;
    this.ui.setToolsEnabled(live);
    document.body.dataset.page = String(hasPage);
    this.ui.setLatency(cs === 'live' && this.latencyMs !== null ? this.latencyMs : null);
    if (!this.ended) {
      if (!hasPage) {
        if (cs === 'connecting' || cs === 'reconnecting') this.ui.showNotice(cs === 'connecting' ? 'Connecting…' : 'Reconnecting…', '', true);
        else if (this.visitor !== 'connected') this.ui.showNotice('Waiting for the visitor…', 'Their page appears here as soon as they are connected.', true);
        else this.ui.showNotice('Loading the visitor’s page…', '', true);
        this.ui.showBanner(null);
      } else {
        this.ui.hideNotice();
        if (cs === 'reconnecting') this.ui.showBanner('Connection lost: reconnecting…');
        else if (cs === 'visitor_away') this.ui.showBanner('The visitor is away: this is their last view.');
        else if (this.waitingSnapshot) this.ui.showBanner('Refreshing the visitor’s page…');
        else this.ui.showBanner(null);
      }
    }
    this.tools.layout();
    this.postStatus();
  }

  /** window.__cbViewer.state() */
  snapshotState(): Record<string, unknown> {
    return {
      connection: this.connState(),
      socket: this.sockState,
      visitor: this.visitor,
      control: this.control,
      ended: this.ended,
      endReason: this.endReason,
      lastSeq: this.lastSeq,
      framesReceived: this.framesReceived,
      framesApplied: this.framesApplied,
      replayersCreated: this.replay.replayersCreated,
      eventsHeld: this.replay.eventsHeld,
      latencyMs: this.latencyMs,
      scale: this.replay.scale,
      viewport: this.replay.visitorViewport ? { ...this.replay.visitorViewport } : null,
      sessionId: this.ctx?.session_id ?? null,
      assets: this.replay.assets ? { ...this.replay.assets.stats } : null,
    };
  }

  replayDocument(): Document | null {
    return this.replay.document();
  }
}

declare global {
  interface Window {
    __cbViewer?: { state(): Record<string, unknown>; replayDocument(): Document | null };
  }
}

// The token leaves the address bar as soon as this script runs.
const fragmentToken = takeTokenFromFragment();

function boot(): void {
  const v = new Viewer();
  // Read-only hooks for tests and support: no token, no way to act.
  Object.defineProperty(window, '__cbViewer', {
    value: Object.freeze({ state: () => v.snapshotState(), replayDocument: () => v.replayDocument() }),
    writable: false,
    configurable: false,
  });
  void v.start(fragmentToken);
}

if (document.readyState === 'loading') document.addEventListener('DOMContentLoaded', boot);
else boot();
