// The visitor SDK's public API (docs/sdk.md), published as window.Cobrowse by
//   <script src="https://<platform>/sdk/v1/cobrowse.js" data-key="pk_..."></script>
// A session started in this tab continues by itself on every page load of the site.
import { createSession, type VisitorInfo } from './api';
import { Emitter } from './emitter';
import { VisitorSession, type SdkEvents, type SdkState } from './session';
import * as store from './store';
import type { PromptRequest } from './ui';

export interface InitOptions {
  /** The tenant's publishable key (pk_...). */
  key: string;
  /** The platform's base URL; defaults to the origin the script was loaded from. */
  api?: string;
  /** Who the visitor is, shown to agents (external_id, name, email, custom). */
  visitor?: VisitorInfo;
  /** Replaces the built-in consent prompt: resolve true to allow. */
  consent?: (req: PromptRequest) => boolean | Promise<boolean>;
  /** Ask before an agent first sees the page (default true). */
  askBeforeViewing?: boolean;
  /** Inline linked stylesheets into snapshots (default false: the platform's proxy loads them
   * for the agent, and snapshots stay small). */
  inlineStylesheets?: boolean;
}

const script = document.currentScript as HTMLScriptElement | null;

class CobrowseSdk {
  readonly version = '1';
  private opts: InitOptions | null = null;
  private api = '';
  private events = new Emitter<SdkEvents>();
  private current: VisitorSession | null = null;
  private starting: Promise<{ sessionId: string; joinCode: string }> | null = null;
  private ended = false;

  /** Configures the SDK; resumes this tab's session if one is going on. */
  init(opts: InitOptions): void {
    if (!opts || typeof opts.key !== 'string' || !opts.key.startsWith('pk_')) {
      throw new Error('Cobrowse.init needs a publishable key: { key: "pk_..." }');
    }
    this.opts = { ...this.opts, ...opts };
    const base = opts.api ?? script?.dataset.api ?? (script?.src ? new URL(script.src).origin : location.origin);
    this.api = base.replace(/\/+$/, '');
    const stored = store.load();
    if (stored && !this.current) this.resume(stored);
  }

  /** Starts a session (or returns the one going on): its id and the join code to read out. */
  start(): Promise<{ sessionId: string; joinCode: string }> {
    if (this.current && this.current.state !== 'ended') {
      return Promise.resolve({ sessionId: this.current.session.id, joinCode: this.current.session.join_code });
    }
    if (this.starting) return this.starting;
    const opts = this.opts;
    if (!opts) return Promise.reject(new Error('Call Cobrowse.init({ key }) first (or set data-key on the script tag).'));
    this.starting = createSession(this.api, opts.key, opts.visitor)
      .then((session) => {
        const s = this.resume({ session, nextSeq: 1, viewConsent: false });
        this.events.emit('session_started', { sessionId: session.id, joinCode: session.join_code });
        return { sessionId: s.session.id, joinCode: s.session.join_code };
      })
      .finally(() => (this.starting = null));
    return this.starting;
  }

  /** Ends the session for the visitor and every agent. */
  async end(): Promise<void> {
    await this.current?.end();
  }

  joinCode(): string | null {
    return this.live()?.session.join_code ?? null;
  }

  sessionId(): string | null {
    return this.live()?.session.id ?? null;
  }

  state(): SdkState {
    return this.current?.state ?? (this.ended ? 'ended' : 'idle');
  }

  on<K extends keyof SdkEvents>(name: K, fn: (p: SdkEvents[K]) => void): void {
    this.events.on(name, fn);
  }

  off<K extends keyof SdkEvents>(name: K, fn: (p: SdkEvents[K]) => void): void {
    this.events.off(name, fn);
  }

  /** Counters for diagnostics and tests (not a stable API). */
  _stats() {
    return this.current?.stats() ?? null;
  }

  /** Drops the relay connection and resumes it (diagnostics and tests). */
  _reconnect(): void {
    this.current?.reconnect();
  }

  private live(): VisitorSession | null {
    return this.current && this.current.state !== 'ended' ? this.current : null;
  }

  private resume(stored: store.Stored): VisitorSession {
    store.save(stored);
    this.ended = false;
    const s = new VisitorSession(stored, {
      api: this.api,
      consent: this.opts?.consent,
      askBeforeViewing: this.opts?.askBeforeViewing ?? true,
      inlineStylesheets: this.opts?.inlineStylesheets ?? false,
      emit: (n, p) => this.events.emit(n, p),
      onEnded: () => {
        if (this.current === s) {
          this.current = null;
          this.ended = true;
        }
      },
    });
    this.current = s;
    s.start();
    return s;
  }
}

declare global {
  interface Window {
    Cobrowse?: CobrowseSdk;
  }
}

if (!window.Cobrowse) {
  const sdk = new CobrowseSdk();
  window.Cobrowse = sdk;
  const key = script?.dataset.key;
  if (key) {
    try {
      sdk.init({ key });
    } catch (e) {
      console.error('[co-browsing]', e);
    }
  }
}
