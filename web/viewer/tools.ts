// The agent's input over the replay -> control messages (docs/protocol.md, "Agent to relay").
// The replay iframe never receives events (pointer-events: none); an overlay above it does, and
// every coordinate is converted to the visitor's viewport CSS pixels.
import type { ControlAction } from '../protocol';
import type { Replay } from './replay';

export type Mode = 'pointer' | 'highlight';
export type ControlState = 'none' | 'pending' | 'granted' | 'denied' | 'revoked';

export interface ToolsHooks {
  send(msg: ControlAction): boolean;
  hint(text: string): void;
}

const POINTER_INTERVAL_MS = 33; // ~30/s
const WHEEL_INTERVAL_MS = 50;
const HIGHLIGHT_MS = 3000;
const CLICK_SLOP_PX = 4;

export class Tools {
  mode: Mode = 'pointer';
  control: ControlState = 'none';
  enabled = false; // a page is shown and the session is live
  private lastPointer = 0;
  private pointerTimer: ReturnType<typeof setTimeout> | null = null;
  private pendingPointer: { x: number; y: number } | null = null;
  private drag: { x0: number; y0: number; el: HTMLDivElement } | null = null;
  private down: { x: number; y: number } | null = null;
  private wheelTarget: { x: number; y: number } | null = null;
  private wheelSentAt = 0;
  private wheelTimer: ReturnType<typeof setTimeout> | null = null;
  private refSeq = 0;
  private lastHint = 0;

  constructor(private readonly overlay: HTMLElement, private readonly replay: Replay, private readonly hooks: ToolsHooks) {
    overlay.tabIndex = 0;
    overlay.addEventListener('pointermove', (e) => this.onMove(e));
    overlay.addEventListener('pointerdown', (e) => this.onDown(e));
    overlay.addEventListener('pointerup', (e) => this.onUp(e));
    overlay.addEventListener('pointercancel', () => this.cancelDrag());
    overlay.addEventListener('wheel', (e) => this.onWheel(e), { passive: false });
    overlay.addEventListener('keydown', (e) => this.onKey(e));
    overlay.addEventListener('contextmenu', (e) => e.preventDefault());
  }

  /** A new click/key reference (echoed by `refused`). */
  nextRef(prefix = 'c'): string {
    this.refSeq++;
    return `${prefix}-${this.refSeq}`;
  }

  setMode(m: Mode): void {
    this.mode = m;
    this.overlay.dataset.mode = m;
    this.cancelDrag();
  }

  /** Places the overlay exactly over the scaled replay iframe. */
  layout(): void {
    const r = this.replay.rect();
    const parent = this.overlay.parentElement;
    if (!r || !parent) {
      this.overlay.style.display = 'none';
      return;
    }
    const pr = parent.getBoundingClientRect();
    this.overlay.style.display = 'block';
    this.overlay.style.left = `${r.left - pr.left}px`;
    this.overlay.style.top = `${r.top - pr.top}px`;
    this.overlay.style.width = `${r.width}px`;
    this.overlay.style.height = `${r.height}px`;
  }

  /** Viewer client coordinates -> visitor viewport CSS pixels (null outside the page). */
  private toVisitor(clientX: number, clientY: number): { x: number; y: number } | null {
    const r = this.replay.rect();
    const s = this.replay.scale;
    const v = this.replay.visitorViewport;
    if (!r || !v || s <= 0) return null;
    const x = (clientX - r.left) / s;
    const y = (clientY - r.top) / s;
    return { x: Math.round(Math.min(Math.max(x, 0), v.width)), y: Math.round(Math.min(Math.max(y, 0), v.height)) };
  }

  private onMove(e: PointerEvent): void {
    if (!this.enabled) return;
    if (this.drag) {
      this.updateDrag(e);
      return;
    }
    if (this.mode !== 'pointer') return;
    const p = this.toVisitor(e.clientX, e.clientY);
    if (!p) return;
    this.pendingPointer = p;
    const now = performance.now();
    const wait = this.lastPointer + POINTER_INTERVAL_MS - now;
    if (wait <= 0) this.flushPointer();
    else if (!this.pointerTimer) this.pointerTimer = setTimeout(() => this.flushPointer(), wait);
  }

  private flushPointer(): void {
    if (this.pointerTimer) clearTimeout(this.pointerTimer);
    this.pointerTimer = null;
    const p = this.pendingPointer;
    this.pendingPointer = null;
    if (!p) return;
    this.lastPointer = performance.now();
    this.hooks.send({ type: 'pointer', x: p.x, y: p.y });
  }

  private onDown(e: PointerEvent): void {
    if (!this.enabled || e.button !== 0) return;
    this.overlay.focus({ preventScroll: true });
    if (this.mode === 'highlight') {
      const r = this.overlay.getBoundingClientRect();
      const el = document.createElement('div');
      el.className = 'hl hl-drawing';
      el.style.left = `${e.clientX - r.left}px`;
      el.style.top = `${e.clientY - r.top}px`;
      this.overlay.appendChild(el);
      this.drag = { x0: e.clientX, y0: e.clientY, el };
      try {
        this.overlay.setPointerCapture(e.pointerId);
      } catch {
        /* ignore */
      }
    } else {
      this.down = { x: e.clientX, y: e.clientY };
    }
    e.preventDefault();
  }

  private updateDrag(e: PointerEvent): void {
    const d = this.drag;
    if (!d) return;
    const r = this.overlay.getBoundingClientRect();
    const x1 = Math.min(Math.max(e.clientX, r.left), r.right);
    const y1 = Math.min(Math.max(e.clientY, r.top), r.bottom);
    d.el.style.left = `${Math.min(d.x0, x1) - r.left}px`;
    d.el.style.top = `${Math.min(d.y0, y1) - r.top}px`;
    d.el.style.width = `${Math.abs(x1 - d.x0)}px`;
    d.el.style.height = `${Math.abs(y1 - d.y0)}px`;
  }

  private cancelDrag(): void {
    if (this.drag) this.drag.el.remove();
    this.drag = null;
    this.down = null;
  }

  private onUp(e: PointerEvent): void {
    if (!this.enabled) return;
    if (this.drag) {
      const d = this.drag;
      this.drag = null;
      this.updateDrag(e);
      const a = this.toVisitor(Math.min(d.x0, e.clientX), Math.min(d.y0, e.clientY));
      const b = this.toVisitor(Math.max(d.x0, e.clientX), Math.max(d.y0, e.clientY));
      if (!a || !b || b.x - a.x < 4 || b.y - a.y < 4) {
        d.el.remove();
        return;
      }
      this.hooks.send({ type: 'highlight', x: a.x, y: a.y, w: b.x - a.x, h: b.y - a.y });
      d.el.classList.remove('hl-drawing');
      // Fade after 3 s (the class change starts a CSS transition), then drop it.
      setTimeout(() => d.el.classList.add('hl-fading'), HIGHLIGHT_MS);
      setTimeout(() => d.el.remove(), HIGHLIGHT_MS + 600);
      return;
    }
    const down = this.down;
    this.down = null;
    if (!down || e.button !== 0) return;
    if (Math.abs(e.clientX - down.x) > CLICK_SLOP_PX || Math.abs(e.clientY - down.y) > CLICK_SLOP_PX) return;
    if (this.control !== 'granted') {
      this.hintOnce('Request control to click on the visitor’s page');
      return;
    }
    const p = this.toVisitor(e.clientX, e.clientY);
    if (!p) return;
    this.flushPointer();
    this.hooks.send({ type: 'click', x: p.x, y: p.y, ref: this.nextRef('c') });
    this.ripple(e);
  }

  /** A short local ring where the agent clicked. */
  private ripple(e: PointerEvent): void {
    const r = this.overlay.getBoundingClientRect();
    const el = document.createElement('div');
    el.className = 'click-ripple';
    el.style.left = `${e.clientX - r.left}px`;
    el.style.top = `${e.clientY - r.top}px`;
    this.overlay.appendChild(el);
    setTimeout(() => el.remove(), 600);
  }

  private onWheel(e: WheelEvent): void {
    if (!this.enabled) return;
    e.preventDefault();
    if (this.control !== 'granted') {
      this.hintOnce('Request control to scroll the visitor’s page');
      return;
    }
    const st = this.replay.scrollState();
    if (!st) return;
    const unit = e.deltaMode === 1 ? 40 : e.deltaMode === 2 ? (this.replay.visitorViewport?.height ?? 800) : 1;
    // Accumulate on top of the last target sent while the page has not caught up yet.
    const base = this.wheelTarget && performance.now() - this.wheelSentAt < 400 ? this.wheelTarget : { x: st.x, y: st.y };
    const s = this.replay.scale || 1;
    // deltas are in the agent's pixels; the page moves in the visitor's (scaled) pixels
    const x = Math.round(Math.min(Math.max(base.x + (e.deltaX * unit) / s, 0), st.maxX));
    const y = Math.round(Math.min(Math.max(base.y + (e.deltaY * unit) / s, 0), st.maxY));
    this.wheelTarget = { x, y };
    const wait = this.wheelSentAt + WHEEL_INTERVAL_MS - performance.now();
    if (wait <= 0) this.flushWheel();
    else if (!this.wheelTimer) this.wheelTimer = setTimeout(() => this.flushWheel(), wait);
  }

  private flushWheel(): void {
    if (this.wheelTimer) clearTimeout(this.wheelTimer);
    this.wheelTimer = null;
    const t = this.wheelTarget;
    if (!t) return;
    this.wheelSentAt = performance.now();
    this.hooks.send({ type: 'scroll', x: t.x, y: t.y });
  }

  private onKey(e: KeyboardEvent): void {
    if (!this.enabled) return;
    if (e.ctrlKey || e.metaKey || e.altKey) return; // leave shortcuts to the agent's browser
    const k = e.key;
    const allowed = k.length === 1 || k === 'Backspace' || k === 'Enter' || k === 'Tab';
    if (!allowed) return;
    if (this.control !== 'granted') {
      if (k !== 'Tab') this.hintOnce('Request control to type on the visitor’s page');
      return;
    }
    e.preventDefault();
    this.hooks.send({ type: 'key', key: k, ref: this.nextRef('k') });
  }

  private hintOnce(text: string): void {
    const now = Date.now();
    if (now - this.lastHint < 4000) return;
    this.lastHint = now;
    this.hooks.hint(text);
  }
}
