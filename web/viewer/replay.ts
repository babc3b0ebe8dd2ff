// The visitor's page, rebuilt by rrweb's Replayer in a sandboxed iframe (no allow-scripts).
// One Replayer per snapshot: a snapshot frame destroys the previous one, so the events before the
// latest snapshot are released (the memory bound of long sessions).
import { Replayer } from '@rrweb/replay';
import type { Assets, NodeLookup } from './assets';

/** The rrweb event fields the viewer reads. */
export interface RREvent {
  type: number;
  timestamp: number;
  data?: any; // eslint-disable-line @typescript-eslint/no-explicit-any
  delay?: number;
}

const EV_INCREMENTAL = 3;
const EV_META = 4;

export const CANVAS_TAG = 'cb-canvas';
const DATA_IMAGE = /^data:image\/(png|jpeg|webp);base64,[A-Za-z0-9+/]+={0,2}$/;

export interface Viewport {
  width: number;
  height: number;
}

export class Replay {
  private replayer: Replayer | null = null;
  private viewport: Viewport | null = null;
  private lastTs = 0; // the latest (rewritten) timestamp handed to the replayer
  private scaleValue = 1;
  replayersCreated = 0;
  /** Called after the scale or position of the page changed. */
  onLayout: () => void = () => {};
  /** Called after a fresh page was built. */
  onPage: () => void = () => {};
  /** Rewrites asset URLs to the proxy before the Replayer sees them (null: no proxy). */
  assets: Assets | null = null;

  constructor(private readonly stage: HTMLElement, private readonly host: HTMLElement) {
    window.addEventListener('resize', () => this.layout());
    if (typeof ResizeObserver !== 'undefined') new ResizeObserver(() => this.layout()).observe(stage);
  }

  get hasPage(): boolean {
    return this.replayer !== null;
  }

  get scale(): number {
    return this.scaleValue;
  }

  get visitorViewport(): Viewport | null {
    return this.viewport;
  }

  /** Events the current Replayer holds (0 without one). */
  get eventsHeld(): number {
    const r = this.replayer;
    if (!r) return 0;
    try {
      return r.service.state.context.events.length;
    } catch {
      return 0;
    }
  }

  get iframe(): HTMLIFrameElement | null {
    return this.replayer ? this.replayer.iframe : null;
  }

  /** The rebuilt document (for tests and for scroll positions), or null. */
  document(): Document | null {
    return this.replayer?.iframe.contentDocument ?? null;
  }

  window(): Window | null {
    return this.replayer?.iframe.contentWindow ?? null;
  }

  /** Drops the current page (reset, ended). */
  clear(): void {
    if (this.replayer) {
      try {
        this.replayer.destroy();
      } catch (e) {
        console.warn('viewer: replayer destroy', e);
      }
    }
    this.replayer = null;
    this.canvasPics.clear();
    this.canvasSizes.clear();
    this.canvasDraws.clear();
    this.canvasStyle = null;
    this.canvasList = null;
    this.host.replaceChildren();
  }

  /** A snapshot frame: a fresh Replayer with these events (Meta, FullSnapshot, ...). */
  snapshot(events: RREvent[]): void {
    this.clear();
    const r = new Replayer([], {
      root: this.host,
      liveMode: true,
      mouseTail: false,
      UNSAFE_replayCanvas: false,
      insertStyleRules: [
        '.cb-ui { display: none !important; }',
        // Redacted by the visitor's SDK (docs/sdk.md, "Masking"): an empty box of the same size.
        '.cb-redacted { background: repeating-linear-gradient(135deg, rgba(100,116,139,.16) 0 6px, rgba(100,116,139,.05) 6px 12px) !important; border-radius: 4px; }',
      ],
      triggerFocus: false,
      showWarning: false,
      // Live events are applied as they come (not fast-forwarded): the virtual DOM is only
      // flushed by play(), which live mode never calls.
      useVirtualDom: false,
      pauseAnimation: false,
    });
    // The page is attacker-controlled: its iframe must never run scripts.
    const sb = r.iframe.getAttribute('sandbox');
    const tokens = (sb ?? '').split(/\s+/).filter(Boolean);
    if (sb === null || tokens.includes('allow-scripts') || tokens.includes('allow-top-navigation')) {
      r.iframe.setAttribute('sandbox', 'allow-same-origin');
      // A sandbox set after the document exists does not apply to it: refuse this page.
      r.destroy();
      this.host.replaceChildren();
      throw new Error('replay iframe is not sandboxed without scripts');
    }
    r.iframe.setAttribute('tabindex', '-1');
    r.iframe.setAttribute('aria-hidden', 'true');
    r.iframe.setAttribute('title', 'Visitor page');
    r.on('resize', (d: unknown) => {
      const v = d as Viewport;
      if (v && v.width > 0 && v.height > 0) {
        this.viewport = { width: v.width, height: v.height };
        this.layout();
      }
    });
    r.on('custom-event', (e: unknown) => this.custom(e as RREvent));
    r.on('fullsnapshot-rebuilded', () => {
      this.sizeCanvases();
      this.watchStylesheets();
      this.onPage();
    });
    r.on('event-cast', (ev: unknown) => {
      const x = ev as RREvent;
      // DOM mutations (source 0) may add canvases or change their size attributes
      if (x && x.type === EV_INCREMENTAL && x.data && x.data.source === 0) this.sizeCanvases();
    });
    this.replayer = r;
    this.replayersCreated++;
    this.assets?.newPage();
    const now = Date.now();
    this.lastTs = now;
    // Live mode against the viewer's clock: every event's timestamp is rewritten onto it (see
    // add()), so that a visitor clock ahead of or behind ours neither delays nor batches events.
    r.startLive(now);
    for (const e of events) {
      if (e && e.type === EV_META && e.data) {
        this.viewport = { width: e.data.width, height: e.data.height };
      }
    }
    this.add(events);
    this.layout();
  }

  /** An event frame: more events for the current page; ignored before the first snapshot. */
  events(events: RREvent[]): void {
    if (!this.replayer) return;
    this.add(events);
  }

  private add(events: RREvent[]): void {
    const r = this.replayer;
    if (!r || events.length === 0) return;
    // The newest event of the frame maps to now; the others keep their spacing behind it, never
    // before an event already handed over (order is rrweb's timestamp order).
    let maxTs = -Infinity;
    for (const e of events) if (typeof e.timestamp === 'number' && e.timestamp > maxTs) maxTs = e.timestamp;
    const shift = Number.isFinite(maxTs) ? Date.now() - maxTs : 0;
    for (const e of events) {
      if (!e || typeof e.type !== 'number') continue;
      const t = typeof e.timestamp === 'number' ? e.timestamp + shift : this.lastTs;
      const ts = Math.max(t, this.lastTs);
      this.lastTs = ts;
      const copy = { ...e, timestamp: ts } as RREvent;
      if (this.assets) {
        try {
          this.assets.event(copy, this.lookup(r));
        } catch (err) {
          console.warn('viewer: asset rewrite', err); // the page still shows, with its own URLs
        }
      }
      r.addEvent(copy as never);
    }
  }

  /** The replay's nodes by rrweb id, for rewriting attribute and text changes. */
  private lookup(r: Replayer): NodeLookup {
    const el = (id: number): Element | null => {
      const n = r.getMirror().getNode(id) as unknown as Node | null;
      return n && n.nodeType === 1 ? (n as Element) : null;
    };
    return {
      tagOf: (id) => el(id)?.localName ?? null,
      parentTagOf: (id) => {
        const n = r.getMirror().getNode(id) as unknown as Node | null;
        return n && n.parentElement ? n.parentElement.localName : null;
      },
      attrOf: (id, name) => el(id)?.getAttribute(name) ?? null,
    };
  }

  // Stylesheet failures: `error` does not bubble, so one capturing listener on the replay's
  // document sees every <link> that fails, whenever it was added. Chromium fires it for a
  // listener of ours although the iframe's own scripts are disabled (docs/viewer.md, "Proxy").
  // Added again after every rebuild: rrweb's document.open() removes listeners (the same
  // function twice on one document is one listener).
  private readonly onResourceError = (ev: Event): void => {
    const t = ev.target as Element | null;
    if (!t || !this.assets || t.ownerDocument !== this.document()) return;
    if (t.localName === 'img') {
      this.assets.retryImage(t);
      return;
    }
    if (t.localName !== 'link') return;
    const href = t.getAttribute('href');
    if (href) this.assets.failed(href);
  };

  private watchStylesheets(): void {
    this.document()?.addEventListener('error', this.onResourceError, true);
  }

  /** Custom events: the SDK's canvas pictures. */
  private custom(e: RREvent): void {
    const d = e && e.data;
    if (!d || d.tag !== CANVAS_TAG || !d.payload) return;
    const { id, url } = d.payload as { id: number; url: string };
    if (typeof id !== 'number' || typeof url !== 'string' || !DATA_IMAGE.test(url)) return;
    const r = this.replayer;
    if (!r) return;
    const node = r.getMirror().getNode(id) as unknown as HTMLCanvasElement | null;
    if (!node || node.nodeName !== 'CANVAS') return;
    this.canvasPics.set(id, url);
    this.sizeCanvases();
    this.writeCanvasRules();
    // Also onto the bitmap, for whoever reads its pixels (getImageData): the latest picture wins.
    const n = (this.canvasDraws.get(id) ?? 0) + 1;
    this.canvasDraws.set(id, n);
    const img = new Image();
    img.onload = () => {
      if (this.canvasDraws.get(id) !== n || this.replayer !== r) return;
      const ctx = node.getContext('2d');
      if (!ctx) return;
      ctx.clearRect(0, 0, node.width, node.height);
      ctx.drawImage(img, 0, 0, node.width, node.height);
    };
    img.src = url;
  }

  // Canvas pictures. In an iframe sandboxed without allow-scripts scripting is disabled, and a
  // <canvas> then shows its fallback content, not its bitmap (HTML spec): drawing on it shows
  // nothing and it has no intrinsic size. So each canvas gets, in a style sheet of ours placed
  // before the page's styles, its default size at zero specificity (the page's own CSS wins, as it
  // would over the intrinsic size) and its latest picture as a background image.
  private canvasPics = new Map<number, string>();
  private canvasSizes = new Map<number, string>();
  private canvasDraws = new Map<number, number>();
  private canvasStyle: HTMLStyleElement | null = null;
  private canvasList: HTMLCollectionOf<HTMLCanvasElement> | null = null;

  /** Gives every canvas of the page its default size (after a rebuild and after mutations). */
  private sizeCanvases(): void {
    const r = this.replayer;
    const doc = this.document();
    if (!r || !doc) return;
    if (!this.canvasList || this.canvasList[0]?.ownerDocument !== doc) this.canvasList = doc.getElementsByTagName('canvas');
    if (this.canvasList.length === 0 && this.canvasSizes.size === 0) return;
    let changed = false;
    const mirror = r.getMirror();
    for (const c of Array.from(this.canvasList)) {
      const id = mirror.getId(c as never);
      if (id < 0) continue;
      if (c.getAttribute('data-cb-canvas') !== String(id)) c.setAttribute('data-cb-canvas', String(id));
      const w = Number(c.getAttribute('width') ?? 300) || 300;
      const h = Number(c.getAttribute('height') ?? 150) || 150;
      const size = `${w}/${h}`;
      if (this.canvasSizes.get(id) !== size) {
        this.canvasSizes.set(id, size);
        changed = true;
      }
    }
    if (changed) this.writeCanvasRules();
  }

  private writeCanvasRules(): void {
    const doc = this.document();
    if (!doc || !doc.documentElement) return;
    let st = this.canvasStyle;
    if (!st || st.ownerDocument !== doc || !st.isConnected) {
      st = doc.createElement('style');
      st.setAttribute('data-cb-viewer', '');
      doc.documentElement.insertBefore(st, doc.head ?? doc.documentElement.firstChild);
      this.canvasStyle = st;
    }
    const out: string[] = [];
    for (const [id, size] of this.canvasSizes) {
      const [w, h] = size.split('/');
      out.push(`:where(canvas[data-cb-canvas="${id}"]){display:inline-block;width:${w}px;aspect-ratio:${w}/${h}}`);
    }
    for (const [id, url] of this.canvasPics) {
      // url matched DATA_IMAGE: base64 characters only, nothing that could leave the string.
      out.push(`canvas[data-cb-canvas="${id}"]{background-image:url("${url}")!important;background-size:100% 100%!important;background-repeat:no-repeat!important;background-origin:content-box!important;background-clip:content-box!important}`);
    }
    const text = out.join('\n');
    if (st.textContent !== text) st.textContent = text;
  }

  /** Scales the visitor's viewport to fit the stage, centered, never above 1:1. */
  layout(): void {
    const r = this.replayer;
    const v = this.viewport;
    if (!r || !v || v.width <= 0 || v.height <= 0) return;
    const areaW = this.stage.clientWidth;
    const areaH = this.stage.clientHeight;
    if (areaW <= 0 || areaH <= 0) return;
    const pad = 16;
    const s = Math.min(1, (areaW - pad * 2) / v.width, (areaH - pad * 2) / v.height);
    this.scaleValue = s > 0 ? s : 1;
    const w = v.width * this.scaleValue;
    const h = v.height * this.scaleValue;
    const left = Math.round((areaW - w) / 2);
    const top = Math.round((areaH - h) / 2);
    const wrap = r.wrapper;
    wrap.style.position = 'absolute';
    wrap.style.left = `${left}px`;
    wrap.style.top = `${top}px`;
    wrap.style.width = `${v.width}px`;
    wrap.style.height = `${v.height}px`;
    wrap.style.transformOrigin = '0 0';
    wrap.style.transform = `scale(${this.scaleValue})`;
    this.onLayout();
  }

  /** The page's rectangle in the viewer's CSS pixels (the scaled iframe), or null. */
  rect(): DOMRect | null {
    const f = this.iframe;
    if (!f || !this.viewport) return null;
    const r = f.getBoundingClientRect();
    return r.width > 0 && r.height > 0 ? r : null;
  }

  /** The rebuilt page's current document scroll position and size. */
  scrollState(): { x: number; y: number; maxX: number; maxY: number } | null {
    const w = this.window();
    const d = this.document();
    if (!w || !d) return null;
    const el = d.scrollingElement ?? d.documentElement;
    const vw = this.viewport?.width ?? w.innerWidth;
    const vh = this.viewport?.height ?? w.innerHeight;
    return {
      x: w.scrollX,
      y: w.scrollY,
      maxX: Math.max(0, (el?.scrollWidth ?? 0) - vw),
      maxY: Math.max(0, (el?.scrollHeight ?? 0) - vh),
    };
  }
}
