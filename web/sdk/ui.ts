// The visitor-side UI, in the tenant's branding, inside one shadow root (styles cannot leak in
// either direction) whose host carries UI_CLASS so that rrweb never records it: the consent
// prompt, the "being watched" indicator with its stop button, and the agent's pointer and
// highlights drawn over the page.
import type { Branding } from './api';
import { UI_CLASS } from './masking';

export interface PromptRequest {
  kind: 'view' | 'control';
  agent: { id: string; name: string | null };
}

const CSS = `
:host { all: initial; }
* { box-sizing: border-box; font-family: system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; }
.layer { position: fixed; inset: 0; pointer-events: none; z-index: 2147483647; }
.pointer { position: fixed; left: 0; top: 0; width: 22px; height: 22px; pointer-events: none;
  transition: transform 60ms linear; display: none; }
.pointer svg { filter: drop-shadow(0 1px 2px rgba(0,0,0,.4)); }
.pointer .tag { position: absolute; left: 18px; top: 18px; background: var(--p); color: #fff; font-size: 12px;
  padding: 2px 7px; border-radius: 10px; white-space: nowrap; }
.hl { position: fixed; border: 3px solid var(--a); border-radius: 6px; background: color-mix(in srgb, var(--a) 15%, transparent);
  transition: opacity .6s; pointer-events: none; }
.card { position: fixed; right: 20px; bottom: 64px; width: min(360px, calc(100vw - 40px)); background: #fff; color: #1d2330;
  border-radius: 12px; box-shadow: 0 12px 40px rgba(16,24,40,.28); padding: 16px 18px; pointer-events: auto;
  border-top: 4px solid var(--p); font-size: 14px; line-height: 1.45; }
.card h2 { margin: 0 0 6px; font-size: 15px; display: flex; align-items: center; gap: 8px; }
.card h2 img { height: 20px; }
.card p { margin: 0 0 12px; }
.row { display: flex; gap: 8px; justify-content: flex-end; flex-wrap: wrap; }
button { font: inherit; font-size: 13px; border-radius: 8px; padding: 7px 14px; cursor: pointer; border: 1px solid #c9ced8;
  background: #fff; color: #1d2330; }
button.primary { background: var(--p); border-color: var(--p); color: #fff; }
button:focus-visible { outline: 3px solid var(--a); outline-offset: 2px; }
.bar { position: fixed; left: 50%; transform: translateX(-50%); bottom: 14px; background: var(--p); color: #fff;
  border-radius: 22px; padding: 6px 8px 6px 14px; display: flex; align-items: center; gap: 10px; font-size: 13px;
  box-shadow: 0 6px 20px rgba(16,24,40,.25); pointer-events: auto; max-width: calc(100vw - 20px); }
.bar .dot { width: 8px; height: 8px; border-radius: 50%; background: #ff4d4f; box-shadow: 0 0 0 3px rgba(255,77,79,.35); }
.bar button { padding: 4px 12px; border: 0; background: rgba(255,255,255,.2); color: #fff; }
.bar button:hover { background: rgba(255,255,255,.32); }
`;

function el<K extends keyof HTMLElementTagNameMap>(tag: K, cls?: string, text?: string): HTMLElementTagNameMap[K] {
  const e = document.createElement(tag);
  if (cls) e.className = cls;
  if (text !== undefined) e.textContent = text;
  return e;
}

export class VisitorUi {
  readonly host: HTMLElement;
  private root: ShadowRoot;
  private layer: HTMLElement;
  private bar: HTMLElement | null = null;
  private pointers = new Map<string, HTMLElement>();
  private name: string;

  constructor(private readonly branding: Branding | undefined) {
    this.host = el('div', UI_CLASS);
    this.host.setAttribute('data-cobrowse-ui', '');
    this.root = this.host.attachShadow({ mode: 'open' });
    const style = el('style');
    style.textContent = CSS;
    this.layer = el('div', 'layer');
    this.layer.style.setProperty('--p', branding?.primary_color ?? '#2f5bea');
    this.layer.style.setProperty('--a', branding?.accent_color ?? branding?.primary_color ?? '#f59e0b');
    this.root.append(style, this.layer);
    this.name = branding?.product_name ?? 'Support';
    (document.body ?? document.documentElement).appendChild(this.host);
  }

  destroy(): void {
    this.host.remove();
  }

  /** The branded consent prompt. Resolves true (allow) or false. */
  prompt(req: PromptRequest): Promise<boolean> {
    return new Promise((resolve) => {
      const who = req.agent.name || 'An agent';
      const card = el('div', 'card');
      card.setAttribute('role', 'dialog');
      card.setAttribute('aria-modal', 'false');
      card.setAttribute('aria-label', this.name);
      const h = el('h2');
      if (this.branding?.logo_url) {
        const img = el('img');
        img.src = this.branding.logo_url;
        img.alt = '';
        h.append(img);
      }
      h.append(document.createTextNode(this.name));
      const text =
        req.kind === 'view'
          ? this.branding?.consent_text || `${who} would like to see this page to help you. Nothing you type in protected fields is shown.`
          : `${who} would like to control this page: click, scroll and type for you. You can take control back at any time.`;
      const p = el('p', undefined, req.kind === 'view' ? `${text}` : text);
      const deny = el('button', undefined, req.kind === 'view' ? 'Decline' : 'Deny');
      const allow = el('button', 'primary', req.kind === 'view' ? 'Allow' : 'Allow control');
      deny.dataset.cbAction = 'deny';
      allow.dataset.cbAction = 'allow';
      const done = (v: boolean) => {
        card.remove();
        resolve(v);
      };
      deny.onclick = () => done(false);
      allow.onclick = () => done(true);
      const row = el('div', 'row');
      row.append(deny, allow);
      card.append(h, p, row);
      this.layer.append(card);
      allow.focus({ preventScroll: true });
    });
  }

  /** The indicator while agents watch; null hides it. */
  indicator(text: string | null, actions: { label: string; run: () => void }[] = []): void {
    this.bar?.remove();
    this.bar = null;
    if (text === null) return;
    const bar = el('div', 'bar');
    bar.setAttribute('role', 'status');
    bar.append(el('span', 'dot'), el('span', undefined, text));
    for (const a of actions) {
      const b = el('button', undefined, a.label);
      b.onclick = a.run;
      bar.append(b);
    }
    this.bar = bar;
    this.layer.append(bar);
  }

  pointer(agentId: string, name: string | null, x: number, y: number): void {
    let p = this.pointers.get(agentId);
    if (!p) {
      p = el('div', 'pointer');
      p.innerHTML =
        '<svg width="22" height="22" viewBox="0 0 22 22"><path d="M2 2l7 18 2.6-7.4L19 10z" fill="var(--a)" stroke="#fff" stroke-width="1.5"/></svg>';
      p.append(el('span', 'tag', name || 'Agent'));
      this.pointers.set(agentId, p);
      this.layer.append(p);
    }
    p.style.display = 'block';
    p.style.transform = `translate(${Math.round(x)}px, ${Math.round(y)}px)`;
  }

  removePointer(agentId: string): void {
    this.pointers.get(agentId)?.remove();
    this.pointers.delete(agentId);
  }

  highlight(x: number, y: number, w: number, h: number): void {
    const r = el('div', 'hl');
    Object.assign(r.style, { left: `${x}px`, top: `${y}px`, width: `${Math.max(4, w)}px`, height: `${Math.max(4, h)}px` });
    this.layer.append(r);
    setTimeout(() => (r.style.opacity = '0'), 2500);
    setTimeout(() => r.remove(), 3200);
  }

  /** True when the event target is part of this UI (control never acts on it). */
  contains(node: Node | null): boolean {
    return node === this.host || (node !== null && this.host.contains(node));
  }
}
