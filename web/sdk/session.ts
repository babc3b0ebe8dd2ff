// One co-browsing session on one page: wires capture -> batcher -> outbox -> connection, and the
// relay's messages to consent, the indicator and the control executor. A page load ends this
// object; the next page builds a new one from the stored session (same session, same join code,
// seq continuing, a fresh snapshot).
import type { AgentRef, ControlAction, ToVisitor } from '../protocol';
import { CLOSE } from '../protocol';
import { ApiError, endSession, getSession, uploadStylesheet, type CreatedSession } from './api';
import { Batcher } from './batcher';
import { Capture } from './capture';
import { Connection, type ConnectionState } from './connection';
import { ControlExecutor } from './control';
import { MaskPolicy } from './masking';
import { Outbox } from './outbox';
import * as store from './store';
import { Stylesheets } from './stylesheets';
import { VisitorUi, type PromptRequest } from './ui';

export type SdkState = 'idle' | 'connecting' | 'active' | 'ended';

export interface SdkEvents extends Record<string, unknown> {
  session_started: { sessionId: string; joinCode: string };
  agent_joined: { agent: AgentRef };
  agent_left: { agent: AgentRef };
  control_requested: { agent: AgentRef };
  control_granted: { agent: AgentRef };
  control_revoked: { agent: AgentRef | null };
  session_ended: { reason: string };
  connection: { state: ConnectionState };
}

export interface SessionOptions {
  api: string;
  /** Replaces the built-in prompt: resolve true to allow. */
  consent?: (req: PromptRequest) => boolean | Promise<boolean>;
  /** Ask the visitor before an agent first sees the page (default true). */
  askBeforeViewing: boolean;
  /** rrweb's inlineStylesheet (default false: the platform's proxy loads stylesheets). */
  inlineStylesheets?: boolean;
  emit<K extends keyof SdkEvents>(name: K, payload: SdkEvents[K]): void;
  onEnded(): void;
}

export class VisitorSession {
  state: SdkState = 'connecting';
  readonly session: CreatedSession;
  private viewConsent: boolean;
  private readonly agents = new Map<string, AgentRef>();
  private readonly control = new Map<string, 'granted'>();
  private readonly ui: VisitorUi;
  private readonly policy: MaskPolicy;
  private readonly capture: Capture;
  private readonly batcher: Batcher;
  private readonly outbox: Outbox;
  private readonly conn: Connection;
  private readonly executor: ControlExecutor;
  private readonly stylesheets: Stylesheets;
  private viewPrompt: Promise<boolean> | null = null;
  private uploadTo: Promise<string> | null = null;
  private slowDowns = 0;

  constructor(stored: store.Stored, private readonly opts: SessionOptions) {
    this.session = stored.session;
    this.viewConsent = stored.viewConsent || !opts.askBeforeViewing;
    this.ui = new VisitorUi(this.session.branding);
    this.policy = new MaskPolicy(this.session.masking ?? { selectors: [], mask_all_inputs: false });
    this.executor = new ControlExecutor(this.ui, this.policy);
    this.outbox = new Outbox(stored.nextSeq, {
      send: (f) => this.conn.send(f),
      needSnapshot: () => this.capture.snapshot(),
      seqChanged: () => this.persistSoon(),
      tooLarge: (seq, bytes) => console.error(`[co-browsing] frame ${seq} is ${bytes} bytes, over the relay's limit: not sent`),
    });
    this.batcher = new Batcher((b) => this.outbox.add(b));
    this.capture = new Capture(this.policy, { event: (e) => this.batcher.push(e) }, { inlineStylesheets: opts.inlineStylesheets });
    this.stylesheets = new Stylesheets({
      sheets: () => Array.from(document.styleSheets),
      upload: async (url, text) => uploadStylesheet(await this.uploadTarget(), this.session.visitor_token, url, text),
      send: (answer) => void this.conn.send(JSON.stringify(answer)),
    });
    this.conn = new Connection(this.session.relay_url, this.session.visitor_token, {
      message: (m) => this.onMessage(m),
      state: (s) => {
        if (s === 'open') this.state = 'active';
        this.outbox.setOnline(s === 'open');
        opts.emit('connection', { state: s });
      },
      final: (code, reason) => this.finish(code === CLOSE.REPLACED ? 'replaced' : reason || 'ended', code !== CLOSE.REPLACED),
      stillAlive: () => this.stillAlive(),
      resumeSeq: () => this.outbox.nextSeq - 1,
    });
  }

  start(): void {
    if (this.viewConsent) this.capture.start();
    this.conn.start();
    window.addEventListener('online', this.onOnline);
    window.addEventListener('pagehide', this.onPageHide);
  }

  /** Ends the session for everyone (the visitor pressed stop, or the host page called end()). */
  async end(reason = 'ended_by_visitor'): Promise<void> {
    if (this.state === 'ended') return;
    try {
      await endSession(this.opts.api, this.session.visitor_token);
    } catch (e) {
      if (!(e instanceof ApiError)) console.warn('[co-browsing] could not reach the server to end the session', e);
    }
    this.finish(reason, true);
  }

  stats() {
    return {
      nextSeq: this.outbox.nextSeq,
      framesSent: this.outbox.framesSent,
      pendingFrames: this.outbox.pending,
      canvasPicturesSent: this.capture.canvasPicturesSent,
      stylesheetUploads: this.stylesheets.uploads,
      slowDowns: this.slowDowns,
      recording: this.capture.running,
      agents: [...this.agents.values()],
    };
  }

  /** Drops the connection and reconnects with resume (tests, and the browser's online event). */
  reconnect(): void {
    this.conn.reconnectNow();
  }

  private onOnline = () => this.conn.reconnectNow();

  /** nextSeq changes with every frame: written at most once a second, and when the page goes.
   * A stale value after a crash is harmless: the relay's hello moves the numbering past it. */
  private persistSoon(): void {
    if (this.persistTimer !== null) return;
    this.persistTimer = setTimeout(() => {
      this.persistTimer = null;
      if (this.state !== 'ended') this.persist();
    }, 1000);
  }

  private persistTimer: ReturnType<typeof setTimeout> | null = null;
  private onPageHide = () => {
    if (this.state !== 'ended') this.persist();
  };

  private persist(): void {
    store.save({ session: this.session, nextSeq: this.outbox.nextSeq, viewConsent: this.viewConsent });
  }

  /** Where stylesheet uploads go: GET /v1/token/session's stylesheet_upload_url, asked once per
   * page (again after a failure); the API's own origin when a platform gives none. */
  private uploadTarget(): Promise<string> {
    if (!this.uploadTo) {
      const fallback = `${this.opts.api}/v1/token/session/stylesheets`;
      this.uploadTo = getSession(this.opts.api, this.session.visitor_token).then(
        (ctx) => ctx.stylesheet_upload_url || fallback,
        (err) => {
          this.uploadTo = null;
          throw err;
        },
      );
    }
    return this.uploadTo;
  }

  private async stillAlive(): Promise<boolean> {
    try {
      const s = await getSession(this.opts.api, this.session.visitor_token);
      return s.status !== 'ended';
    } catch (e) {
      return !(e instanceof ApiError && (e.status === 401 || e.status === 404));
    }
  }

  private finish(reason: string, forget: boolean): void {
    if (this.state === 'ended') return;
    this.state = 'ended';
    window.removeEventListener('online', this.onOnline);
    window.removeEventListener('pagehide', this.onPageHide);
    if (this.persistTimer !== null) clearTimeout(this.persistTimer);
    this.conn.stop();
    this.capture.stop();
    this.batcher.discard();
    this.outbox.reset();
    this.ui.destroy();
    if (forget) store.clear();
    this.opts.emit('session_ended', { reason });
    this.opts.onEnded();
  }

  private onMessage(m: ToVisitor): void {
    switch (m.type) {
      case 'hello':
        this.outbox.maxFrameBytes = m.limits?.max_frame_bytes ?? this.outbox.maxFrameBytes;
        this.agents.clear();
        for (const a of m.agents ?? []) this.agents.set(a.id, a);
        if (!this.outbox.resync(m.have, m.next_seq)) this.capture.snapshot();
        this.persist();
        if (!this.viewConsent && this.agents.size > 0) void this.askView([...this.agents.values()][0]);
        this.refreshIndicator();
        break;
      case 'ack':
        this.outbox.ack(m.seq);
        break;
      case 'resend':
        if (!this.outbox.rewind(m.from)) this.capture.snapshot();
        break;
      case 'slow_down':
        this.slowDowns++;
        if (!this.outbox.rewind(m.from, m.retry_after_ms)) setTimeout(() => this.capture.snapshot(), m.retry_after_ms);
        break;
      case 'snapshot_request':
        this.capture.snapshot();
        break;
      case 'agent_joined':
        this.agents.set(m.agent.id, m.agent);
        this.opts.emit('agent_joined', { agent: m.agent });
        if (!this.viewConsent) void this.askView(m.agent);
        this.refreshIndicator();
        break;
      case 'agent_left':
        this.agents.delete(m.agent.id);
        this.control.delete(m.agent.id);
        this.ui.removePointer(m.agent.id);
        this.opts.emit('agent_left', { agent: m.agent });
        this.refreshIndicator();
        break;
      case 'control':
        this.onControl(m.agent, m.action);
        break;
    }
  }

  private onControl(agent: AgentRef, a: ControlAction): void {
    switch (a.type) {
      case 'pointer':
        if (this.viewConsent) this.ui.pointer(agent.id, agent.name, a.x, a.y);
        return;
      case 'highlight':
        if (this.viewConsent) this.ui.highlight(a.x, a.y, a.w, a.h);
        return;
      case 'request_control':
        void this.askControl(agent);
        return;
      case 'asset_request':
        // Only once the visitor let agents see the page: its stylesheets are part of it.
        if (this.viewConsent && typeof a.url === 'string') void this.stylesheets.request(a.url);
        return;
      case 'release_control':
        if (this.control.delete(agent.id)) this.opts.emit('control_revoked', { agent });
        this.refreshIndicator();
        return;
      default:
        // The relay forwards these only after consent; check again: the page is the visitor's.
        if (this.control.get(agent.id) === 'granted') this.executor.run(a);
    }
  }

  private ask(req: PromptRequest): Promise<boolean> {
    const custom = this.opts.consent;
    if (custom) return Promise.resolve().then(() => custom(req)).then(Boolean, () => false);
    return this.ui.prompt(req);
  }

  private askView(agent: AgentRef): Promise<boolean> {
    if (this.viewPrompt) return this.viewPrompt;
    this.viewPrompt = this.ask({ kind: 'view', agent }).then((ok) => {
      this.viewPrompt = null;
      if (this.state === 'ended') return false;
      if (!ok) {
        void this.end('declined_by_visitor');
        return false;
      }
      this.viewConsent = true;
      this.persist();
      this.capture.start(); // its first event is a full snapshot
      this.refreshIndicator();
      return true;
    });
    return this.viewPrompt;
  }

  private async askControl(agent: AgentRef): Promise<void> {
    this.opts.emit('control_requested', { agent });
    const ok = this.viewConsent && (await this.ask({ kind: 'control', agent }));
    if (this.state === 'ended' || !this.agents.has(agent.id)) return;
    this.conn.send(JSON.stringify({ type: 'consent', agent_id: agent.id, remote_control: ok ? 'granted' : 'denied' }));
    if (ok) {
      this.control.set(agent.id, 'granted');
      this.opts.emit('control_granted', { agent });
    }
    this.refreshIndicator();
  }

  private revokeControl(): void {
    this.conn.send(JSON.stringify({ type: 'consent', remote_control: 'revoked' }));
    this.control.clear();
    this.opts.emit('control_revoked', { agent: null });
    this.refreshIndicator();
  }

  private refreshIndicator(): void {
    if (this.state === 'ended') return;
    const watching = [...this.agents.values()];
    if (watching.length === 0 || !this.viewConsent) {
      this.ui.indicator(null);
      return;
    }
    const names = watching.map((a) => a.name || 'An agent').join(', ');
    const controlling = [...this.control.keys()].map((id) => this.agents.get(id)?.name || 'An agent');
    const text = controlling.length ? `${controlling.join(', ')} can control this page` : `${names} can see this page`;
    const actions = [{ label: 'Stop sharing', run: (): void => void this.end() }];
    if (controlling.length) actions.unshift({ label: 'Take back control', run: () => this.revokeControl() });
    this.ui.indicator(text, actions);
  }
}
