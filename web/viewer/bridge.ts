// postMessage API for the console that embeds the viewer (docs/viewer.md).
// Out: status events to window.parent, addressed to each allowed origin (never '*').
// In: actions, accepted only from the viewer's own origin or an origin the tenant allows.

export type BridgeState = 'waiting' | 'active' | 'ended';
export type BridgeControl = 'none' | 'pending' | 'granted' | 'denied' | 'revoked';
export type BridgeVisitor = 'connected' | 'disconnected';
export type BridgeAction = 'end' | 'request_control' | 'release_control' | 'status';

export interface StatusEvent {
  source: 'cb-viewer';
  type: 'status';
  state: BridgeState;
  control: BridgeControl;
  visitor: BridgeVisitor;
}

const ACTIONS: readonly BridgeAction[] = ['end', 'request_control', 'release_control', 'status'];

/** An origin string as postMessage accepts it ("scheme://host[:port]"), or null. */
function literalOrigin(o: unknown): string | null {
  if (typeof o !== 'string' || o.includes('*')) return null;
  try {
    const u = new URL(o);
    if (u.protocol !== 'http:' && u.protocol !== 'https:') return null;
    return u.origin;
  } catch {
    return null;
  }
}

export class Bridge {
  private origins: string[] = [location.origin];
  private last = '';
  private readonly embedded = window.parent !== window;

  constructor(private readonly onAction: (a: BridgeAction) => void) {
    window.addEventListener('message', (ev) => this.receive(ev));
  }

  /** The tenant's allowed origins (from the session context); the viewer's own is always allowed. */
  setAllowedOrigins(list: unknown): void {
    const set = new Set<string>([location.origin]);
    if (Array.isArray(list)) {
      for (const o of list) {
        const lit = literalOrigin(o);
        if (lit) set.add(lit);
      }
    }
    this.origins = [...set];
  }

  get allowedOrigins(): readonly string[] {
    return this.origins;
  }

  /** Posts a status event when it differs from the last one posted (or always, with force). */
  status(s: Omit<StatusEvent, 'source' | 'type'>, force = false): void {
    const ev: StatusEvent = { source: 'cb-viewer', type: 'status', state: s.state, control: s.control, visitor: s.visitor };
    const key = JSON.stringify(ev);
    if (key === this.last && !force) return;
    this.last = key;
    if (!this.embedded) return;
    // Where the browser tells the parent's origin (location.ancestorOrigins: Chromium, Safari),
    // post to it alone when it is allowed, and to nobody when it is not; elsewhere to each
    // allowed origin (the browser delivers only to the one the parent has).
    const ancestors = (location as Location & { ancestorOrigins?: DOMStringList }).ancestorOrigins;
    const parentOrigin = ancestors && ancestors.length > 0 ? ancestors[0] : null;
    const targets = parentOrigin !== null ? this.origins.filter((o) => o === parentOrigin) : this.origins;
    for (const origin of targets) {
      try {
        window.parent.postMessage(ev, origin); // delivered only if the parent has this origin
      } catch (e) {
        console.warn('viewer: postMessage to', origin, 'failed', e);
      }
    }
  }

  private receive(ev: MessageEvent): void {
    const d = ev.data as { source?: unknown; action?: unknown } | null;
    if (!d || typeof d !== 'object' || d.source !== 'cb-console') return; // not for us
    if (!this.origins.includes(ev.origin)) {
      console.warn('viewer: ignored a message from an origin that is not allowed:', ev.origin);
      return;
    }
    if (ev.source !== window.parent && ev.source !== window) {
      console.warn('viewer: ignored a message that is not from the embedding page');
      return;
    }
    const a = d.action;
    if (typeof a !== 'string' || !(ACTIONS as readonly string[]).includes(a)) {
      console.warn('viewer: unknown console action', a);
      return;
    }
    this.onAction(a as BridgeAction);
  }
}
