// The viewer's chrome: toolbar, state badge, latency, notices, toasts, and the tenant's branding.
// White-label: the only names shown are the tenant's product name or a neutral "Live session".
import type { Branding } from './session';
import type { ControlState, Mode } from './tools';

export type ConnState = 'connecting' | 'live' | 'reconnecting' | 'visitor_away' | 'ended';

const DEFAULT_TITLE = 'Live session';

// Static, trusted SVG markup (no user data goes into innerHTML).
const svg = (body: string) =>
  `<svg viewBox="0 0 24 24" width="18" height="18" fill="none" stroke="currentColor" stroke-width="2" stroke-linecap="round" stroke-linejoin="round" aria-hidden="true">${body}</svg>`;
const ICONS = {
  pointer: svg('<path d="M4 3l7.5 17 2.2-7.3L21 10.5z"/>'),
  highlight: svg('<rect x="3.5" y="5.5" width="17" height="13" rx="2" stroke-dasharray="3 2.5"/>'),
  control: svg('<path d="M8 13V5.5a1.5 1.5 0 0 1 3 0V12"/><path d="M11 11.5V4a1.5 1.5 0 0 1 3 0v7.5"/><path d="M14 11.5V6a1.5 1.5 0 0 1 3 0v7"/><path d="M17 10.5a1.5 1.5 0 0 1 3 0V15a6 6 0 0 1-6 6h-1.5a6 6 0 0 1-4.9-2.5L4.3 15a1.6 1.6 0 0 1 2.5-2L8 14.5"/>'),
  release: svg('<path d="M18 6L6 18"/><path d="M6 6l12 12"/>'),
  end: svg('<path d="M10.7 13.3a16 16 0 0 0 3.4 2.6l1.3-1.3a1.5 1.5 0 0 1 1.6-.3 11 11 0 0 0 2.6.7A1.5 1.5 0 0 1 21 16.5v2.8a1.6 1.6 0 0 1-1.7 1.6 19 19 0 0 1-8.3-3"/><path d="M6.9 14.3A19 19 0 0 1 3.1 4.7 1.6 1.6 0 0 1 4.7 3h2.8A1.5 1.5 0 0 1 9 4.3a11 11 0 0 0 .7 2.6 1.5 1.5 0 0 1-.3 1.6L8.1 9.8"/><path d="M22 2L2 22"/>'),
  eye: svg('<path d="M2 12s3.6-7 10-7 10 7 10 7-3.6 7-10 7S2 12 2 12z"/><circle cx="12" cy="12" r="3"/>'),
};

const STATE_LABEL: Record<ConnState, string> = {
  connecting: 'Connecting',
  live: 'Live',
  reconnecting: 'Reconnecting',
  visitor_away: 'Visitor away',
  ended: 'Ended',
};

function el<K extends keyof HTMLElementTagNameMap>(tag: K, cls?: string, text?: string): HTMLElementTagNameMap[K] {
  const e = document.createElement(tag);
  if (cls) e.className = cls;
  if (text !== undefined) e.textContent = text;
  return e;
}

function button(cls: string, icon: string, label: string, title: string): { btn: HTMLButtonElement; label: HTMLSpanElement } {
  const btn = el('button', `btn ${cls}`);
  btn.type = 'button';
  btn.title = title;
  btn.setAttribute('aria-label', title);
  const ic = el('span', 'icon');
  ic.innerHTML = icon;
  const lb = el('span', 'label', label);
  btn.append(ic, lb);
  return { btn, label: lb };
}

/** A CSS colour the browser accepts (anything else is ignored). */
function safeColor(c: unknown): string | null {
  if (typeof c !== 'string' || c.length > 64) return null;
  return CSS.supports('color', c) ? c : null;
}

export interface UiHooks {
  mode(m: Mode): void;
  requestControl(): void;
  releaseControl(): void;
  end(): void;
}

export class Ui {
  readonly stage: HTMLElement;
  readonly host: HTMLElement;
  readonly overlay: HTMLElement;
  private readonly product: HTMLSpanElement;
  private readonly logo: HTMLImageElement;
  private readonly badge: HTMLSpanElement;
  private readonly badgeLabel: HTMLSpanElement;
  private readonly latency: HTMLSpanElement;
  private readonly watchers: HTMLSpanElement;
  private readonly tools: HTMLDivElement;
  private readonly pointerBtn: HTMLButtonElement;
  private readonly highlightBtn: HTMLButtonElement;
  private readonly controlBtn: HTMLButtonElement;
  private readonly controlLabel: HTMLSpanElement;
  private readonly endBtn: HTMLButtonElement;
  private readonly notice: HTMLDivElement;
  private readonly noticeTitle: HTMLDivElement;
  private readonly noticeText: HTMLDivElement;
  private readonly banner: HTMLDivElement;
  private readonly toasts: HTMLDivElement;
  private control: ControlState = 'none';
  private lastToast = '';
  private lastToastAt = 0;

  constructor(root: HTMLElement, hooks: UiHooks) {
    root.replaceChildren();
    root.classList.add('viewer');

    const bar = el('header', 'bar');
    const brand = el('div', 'brand');
    this.logo = el('img', 'logo');
    this.logo.alt = '';
    this.logo.hidden = true;
    this.logo.referrerPolicy = 'no-referrer';
    this.logo.addEventListener('error', () => (this.logo.hidden = true));
    this.product = el('span', 'product', DEFAULT_TITLE);
    brand.append(this.logo, this.product);

    const status = el('div', 'status');
    this.badge = el('span', 'badge');
    this.badge.setAttribute('role', 'status');
    this.badgeLabel = el('span', 'badge-label');
    this.badge.append(el('span', 'dot'), this.badgeLabel);
    this.latency = el('span', 'latency');
    this.latency.title = 'Delay between the visitor’s page and this view';
    this.latency.hidden = true;
    this.watchers = el('span', 'watchers');
    this.watchers.hidden = true;
    status.append(this.badge, this.latency, this.watchers);

    this.tools = el('div', 'tools');
    this.tools.setAttribute('role', 'toolbar');
    const modes = el('div', 'group modes');
    const p = button('mode', ICONS.pointer, 'Pointer', 'Pointer: show the visitor where you point');
    const h = button('mode', ICONS.highlight, 'Highlight', 'Highlight: drag to draw a box on the visitor’s page');
    this.pointerBtn = p.btn;
    this.highlightBtn = h.btn;
    this.pointerBtn.dataset.mode = 'pointer';
    this.highlightBtn.dataset.mode = 'highlight';
    this.pointerBtn.addEventListener('click', () => hooks.mode('pointer'));
    this.highlightBtn.addEventListener('click', () => hooks.mode('highlight'));
    modes.append(this.pointerBtn, this.highlightBtn);
    const c = button('control', ICONS.control, 'Request control', 'Ask the visitor for control of their page');
    this.controlBtn = c.btn;
    this.controlLabel = c.label;
    this.controlBtn.addEventListener('click', () => {
      if (this.control === 'granted') hooks.releaseControl();
      else if (this.control !== 'pending') hooks.requestControl();
    });
    const e = button('end danger', ICONS.end, 'End', 'End the session');
    this.endBtn = e.btn;
    this.endBtn.addEventListener('click', () => hooks.end());
    this.tools.append(modes, this.controlBtn, this.endBtn);

    bar.append(brand, status, el('div', 'spacer'), this.tools);

    this.stage = el('main', 'stage');
    this.host = el('div', 'host');
    this.overlay = el('div', 'overlay');
    this.overlay.setAttribute('aria-label', 'Visitor page');
    this.banner = el('div', 'banner');
    this.banner.hidden = true;
    this.notice = el('div', 'notice');
    const card = el('div', 'notice-card');
    const spin = el('div', 'spinner');
    this.noticeTitle = el('div', 'notice-title');
    this.noticeText = el('div', 'notice-text');
    card.append(spin, this.noticeTitle, this.noticeText);
    this.notice.append(card);
    this.toasts = el('div', 'toasts');
    this.toasts.setAttribute('aria-live', 'polite');
    this.stage.append(this.host, this.overlay, this.banner, this.notice, this.toasts);

    root.append(bar, this.stage);
    this.setMode('pointer');
    this.setConn('connecting');
    this.setControl('none');
    this.showNotice('Connecting…', '', true);
    document.title = DEFAULT_TITLE;
  }

  branding(b: Branding | null | undefined): void {
    const name = b && typeof b.product_name === 'string' && b.product_name.trim() ? b.product_name.trim() : DEFAULT_TITLE;
    this.product.textContent = name;
    document.title = name;
    const logo = b && typeof b.logo_url === 'string' ? b.logo_url : '';
    if (logo && /^(https?:|data:image\/)/i.test(logo)) {
      this.logo.src = logo;
      this.logo.alt = name;
      this.logo.hidden = false;
    }
    const root = document.documentElement.style;
    const primary = safeColor(b?.primary_color);
    const accent = safeColor(b?.accent_color);
    if (primary) root.setProperty('--brand', primary);
    if (accent) root.setProperty('--accent', accent);
  }

  /** hasPage: a page is shown (before the first one, "visitor away" reads "waiting for visitor"). */
  setConn(s: ConnState, hasPage = true): void {
    this.badge.dataset.state = s;
    this.badgeLabel.textContent = s === 'visitor_away' && !hasPage ? 'Waiting for visitor' : STATE_LABEL[s];
    document.body.dataset.conn = s;
    if (s === 'ended') this.latency.hidden = true;
  }

  setLatency(ms: number | null): void {
    if (ms === null) {
      this.latency.hidden = true;
      return;
    }
    const v = Math.max(0, ms);
    this.latency.hidden = false;
    this.latency.textContent = v < 1000 ? `~${Math.round(v)} ms` : `~${(v / 1000).toFixed(1)} s`;
    this.latency.dataset.level = v < 150 ? 'good' : v < 1000 ? 'fair' : 'poor';
  }

  setWatchers(others: string[]): void {
    this.watchers.hidden = others.length === 0;
    this.watchers.innerHTML = ICONS.eye;
    this.watchers.append(document.createTextNode(` +${others.length}`));
    this.watchers.title = `Also watching: ${others.join(', ')}`;
  }

  setMode(m: Mode): void {
    this.pointerBtn.setAttribute('aria-pressed', String(m === 'pointer'));
    this.highlightBtn.setAttribute('aria-pressed', String(m === 'highlight'));
    this.overlay.dataset.mode = m;
  }

  /** allowed: the session and token permit remote control. */
  setControl(c: ControlState, allowed = true): void {
    this.control = c;
    this.controlBtn.hidden = !allowed;
    this.controlBtn.dataset.control = c;
    this.controlBtn.disabled = c === 'pending';
    this.controlLabel.textContent =
      c === 'granted' ? 'Release control' : c === 'pending' ? 'Waiting for visitor…' : 'Request control';
    this.controlBtn.title =
      c === 'granted' ? 'Give control back to the visitor' : c === 'pending' ? 'The visitor has been asked' : 'Ask the visitor for control of their page';
    const ic = this.controlBtn.querySelector('.icon');
    if (ic) ic.innerHTML = c === 'granted' ? ICONS.release : ICONS.control;
    this.overlay.dataset.control = c;
    document.body.dataset.control = c;
  }

  setToolsEnabled(on: boolean): void {
    this.pointerBtn.disabled = !on;
    this.highlightBtn.disabled = !on;
    if (!on) this.controlBtn.disabled = true;
    else this.controlBtn.disabled = this.control === 'pending';
  }

  setEnded(): void {
    this.setToolsEnabled(false);
    this.endBtn.disabled = true;
    this.controlBtn.hidden = true;
  }

  showNotice(title: string, text = '', busy = false, kind: 'info' | 'end' = 'info'): void {
    this.noticeTitle.textContent = title;
    this.noticeText.textContent = text;
    this.notice.dataset.busy = String(busy);
    this.notice.dataset.kind = kind;
    this.notice.hidden = false;
  }

  hideNotice(): void {
    this.notice.hidden = true;
  }

  showBanner(text: string | null): void {
    this.banner.hidden = !text;
    this.banner.textContent = text ?? '';
  }

  toast(text: string, kind: 'info' | 'ok' | 'warn' = 'info'): void {
    const now = Date.now();
    if (text === this.lastToast && now - this.lastToastAt < 3000) return; // no bursts of the same
    this.lastToast = text;
    this.lastToastAt = now;
    const t = el('div', `toast toast-${kind}`, text);
    this.toasts.append(t);
    while (this.toasts.childElementCount > 3) this.toasts.firstElementChild?.remove();
    setTimeout(() => t.classList.add('toast-out'), 3600);
    setTimeout(() => t.remove(), 4000);
  }
}
