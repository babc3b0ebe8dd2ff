// Capture: rrweb's recorder (DOM snapshot, mutations, input, scroll, pointer, viewport) with our
// masking, plus a canvas sampler: each canvas's picture a few times a second, sent only when it
// differs from the last one sent (rrweb's per-call canvas recording costs hundreds of MB per
// minute: rrweb-io/rrweb#543, #889). Single-page-app navigations take a fresh snapshot.
import { record } from '@rrweb/record';
import { MaskPolicy, UI_CLASS, type RrEvent } from './masking';

export const CANVAS_INTERVAL_MS = 250;
const CANVAS_MAX_PIXELS = 4096 * 4096;

export interface CaptureHooks {
  event(e: RrEvent): void;
}

export interface CaptureOptions {
  /** Inline each linked stylesheet's rules into the snapshot (rrweb's inlineStylesheet). Off by
   * default: stylesheets travel by URL and the platform's proxy loads them for the viewer, which
   * keeps snapshots small (docs/sdk.md, "Stylesheets"). */
  inlineStylesheets?: boolean;
}

export class Capture {
  private stopRecord: (() => void) | null = null;
  private canvasTimer: ReturnType<typeof setInterval> | null = null;
  private lastPicture = new WeakMap<HTMLCanvasElement, string>();
  private navTimer: ReturnType<typeof setTimeout> | null = null;
  private restoreHistory: (() => void) | null = null;
  canvasPicturesSent = 0;

  constructor(private readonly policy: MaskPolicy, private readonly hooks: CaptureHooks, private readonly options: CaptureOptions = {}) {}

  get running(): boolean {
    return this.stopRecord !== null;
  }

  start(): void {
    if (this.stopRecord) return;
    const stop = record<RrEvent>({
      emit: (e) => {
        this.policy.sanitize(e, (id) => record.mirror.getNode(id));
        if (e.type === 4) this.lastPicture = new WeakMap(); // a new page: send every canvas again
        this.hooks.event(e);
        if (e.type === 2) queueMicrotask(() => this.sampleCanvases());
      },
      blockClass: UI_CLASS,
      blockSelector: this.policy.blockSelector,
      maskAllInputs: true, // every value goes through maskInputFn, which decides
      maskInputFn: this.policy.maskInput,
      maskTextSelector: this.policy.textSelector,
      maskTextFn: this.policy.maskText,
      recordCanvas: false,
      collectFonts: false,
      inlineStylesheet: this.options.inlineStylesheets === true,
      recordCrossOriginIframes: false,
      slimDOMOptions: { script: true, comment: true, headFavicon: true, headMetaSocial: true, headMetaRobots: true, headMetaVerification: true },
      sampling: { mousemove: 50, scroll: 100, media: 800 },
      errorHandler: (err) => {
        console.warn('[co-browsing] capture error', err);
        return true;
      },
    });
    this.stopRecord = stop ?? null;
    this.canvasTimer = setInterval(() => this.sampleCanvases(), CANVAS_INTERVAL_MS);
    this.watchNavigation();
  }

  stop(): void {
    this.stopRecord?.();
    this.stopRecord = null;
    if (this.canvasTimer) clearInterval(this.canvasTimer);
    this.canvasTimer = null;
    this.restoreHistory?.();
    this.restoreHistory = null;
  }

  /** A full snapshot now (the relay asked, or an agent needs a fresh page). */
  snapshot(): void {
    if (this.stopRecord) record.takeFullSnapshot(true);
  }

  private sampleCanvases(): void {
    if (!this.stopRecord) return;
    for (const c of Array.from(document.getElementsByTagName('canvas'))) {
      const id = record.mirror.getId(c);
      if (id < 0 || c.width === 0 || c.height === 0 || c.width * c.height > CANVAS_MAX_PIXELS) continue;
      if (c.closest(`.${UI_CLASS}`) || this.policy.isMaskedElement(c)) continue;
      let url: string;
      try {
        url = c.toDataURL('image/webp', 0.85);
      } catch {
        continue; // a tainted canvas (cross-origin pictures) cannot be read
      }
      if (this.lastPicture.get(c) === url) continue; // unchanged since the last one sent
      this.lastPicture.set(c, url);
      this.canvasPicturesSent++;
      record.addCustomEvent('cb-canvas', { id, url });
    }
  }

  /** pushState/popstate (not replaceState: apps call it for scroll positions and the like): a new snapshot once the route has rendered. */
  private watchNavigation(): void {
    const h = window.history;
    const push = h.pushState;
    const later = () => {
      if (this.navTimer) clearTimeout(this.navTimer);
      this.navTimer = setTimeout(() => this.snapshot(), 100);
    };
    h.pushState = function (this: History, ...args: Parameters<History['pushState']>) {
      push.apply(this, args);
      later();
    };
    window.addEventListener('popstate', later);
    this.restoreHistory = () => {
      h.pushState = push;
      window.removeEventListener('popstate', later);
    };
  }
}
