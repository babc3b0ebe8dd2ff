// Privacy in the browser: what is masked, and the pass that makes sure no masked value, nor its
// length, leaves in an rrweb event. rrweb masks input values through maskInputFn, but misses
// hidden inputs and placeholders (rrweb-io/rrweb#1609), so every event is also checked here.
// A masked value always becomes MASK (fixed length); an empty value stays empty.
import type { Masking } from './api';

export const MASK = '••••••••';
export const MASK_ATTR = 'data-cobrowse-mask';
/** The SDK's own UI: never recorded (rrweb blockClass), hidden by the viewer. */
export const UI_CLASS = 'cb-ui';
/** Added (in the events only) to redacted elements, so that the viewer can show them as such. */
export const REDACTED_CLASS = 'cb-redacted';

const CARD_NAME = /(^|[^a-z])(cc|card|credit|cvc|cvv|csc|cid|iban|ssn|pin|otp|security.?code)([^a-z]|$)|cc-?num|cardnum|card-?number|expir/i;
const VALUE_INPUTS = new Set(['INPUT', 'TEXTAREA', 'SELECT']);

function luhn(digits: string): boolean {
  let sum = 0;
  for (let i = 0; i < digits.length; i++) {
    let d = digits.charCodeAt(digits.length - 1 - i) - 48;
    if (i % 2 === 1) {
      d *= 2;
      if (d > 9) d -= 9;
    }
    sum += d;
  }
  return sum % 10 === 0;
}

/** A card number typed into a field that does not say what it is. */
export function looksLikeCardNumber(value: string): boolean {
  if (!/^[\d\s-]{13,23}$/.test(value)) return false;
  const digits = value.replace(/\D/g, '');
  return digits.length >= 13 && digits.length <= 19 && luhn(digits);
}

export class MaskPolicy {
  readonly textSelector: string;
  private readonly selector: string;
  /** Elements found sensitive once stay sensitive (a card number being edited stays masked). */
  private readonly known = new WeakSet<Element>();

  constructor(private readonly settings: Masking) {
    const sel = [`[${MASK_ATTR}]`];
    for (const s of settings.selectors ?? []) {
      try {
        document.createDocumentFragment().querySelector(s); // throws on an invalid selector
        sel.push(s);
      } catch {
        console.warn('[co-browsing] ignoring invalid masking selector', s);
      }
    }
    this.selector = sel.join(', ');
    this.textSelector = this.selector;
    this.blockSelector = this.selector;
  }

  /** Redacted elements (data-cobrowse-mask, the tenant's selectors): rrweb records them as
   * empty placeholders of the same size, so that the layout stays exact and nothing inside them,
   * not even the length of a text, is sent. */
  readonly blockSelector: string;

  /** Whether an input-like element's value (and placeholder) must be masked. */
  isSensitiveInput(el: Element): boolean {
    if (!VALUE_INPUTS.has(el.tagName)) return false;
    if (this.known.has(el)) return true;
    const type = (el.getAttribute('type') ?? '').toLowerCase();
    if (el.tagName === 'INPUT' && ['submit', 'button', 'reset', 'image', 'checkbox', 'radio', 'range', 'color'].includes(type)) {
      return false;
    }
    let sensitive =
      this.settings.mask_all_inputs ||
      type === 'password' ||
      type === 'hidden' ||
      el.hasAttribute('data-rr-is-password') ||
      /^cc-|\bcc-/.test((el.getAttribute('autocomplete') ?? '').toLowerCase()) ||
      CARD_NAME.test(`${el.getAttribute('name') ?? ''} ${el.id} ${el.getAttribute('autocomplete') ?? ''}`) ||
      el.closest(this.selector) !== null;
    if (!sensitive && 'value' in el && typeof (el as HTMLInputElement).value === 'string') {
      sensitive = looksLikeCardNumber((el as HTMLInputElement).value);
    }
    if (sensitive) this.known.add(el);
    return sensitive;
  }

  /** Whether an element is inside a masked area (its contents are never sent as pictures). */
  isMaskedElement(el: Element): boolean {
    return el.closest(this.selector) !== null;
  }

  /** rrweb's maskInputFn (called for every input, maskAllInputs is on). */
  maskInput = (text: string, el: HTMLElement): string => (text && this.isSensitiveInput(el) ? MASK : text);

  /** rrweb's maskTextFn for text inside masked elements. */
  maskText = (text: string): string => (text.trim() ? MASK : text);

  /** Masks, in place, what rrweb let through in one event. getNode maps rrweb ids to nodes. */
  sanitize(e: RrEvent, getNode: (id: number) => Node | null): void {
    if (e.type === 2) {
      this.walk(e.data.node as SNode, getNode);
    } else if (e.type === 3) {
      const d = e.data as unknown as IncrementalData;
      if (d.source === 0) {
        for (const a of d.adds ?? []) this.walk(a.node, getNode);
        for (const a of d.attributes ?? []) this.fixAttributes(a.id, a.attributes, getNode);
      } else if (d.source === 5 && typeof d.text === 'string' && d.text) {
        const n = getNode(d.id);
        if (n instanceof Element && this.isSensitiveInput(n)) d.text = MASK;
      }
    }
  }

  private walk(n: SNode, getNode: (id: number) => Node | null): void {
    if (n.type === 2) {
      const a = n.attributes;
      if (a && 'rr_width' in a && !String(a.class ?? '').includes(UI_CLASS)) {
        a.class = `${a.class ? `${a.class} ` : ''}${REDACTED_CLASS}`;
      }
      if (n.attributes && VALUE_INPUTS.has(String(n.tagName).toUpperCase())) this.fixAttributes(n.id, n.attributes, getNode);
      for (const c of n.childNodes ?? []) this.walk(c, getNode);
    } else if (n.type === 0) {
      for (const c of n.childNodes ?? []) this.walk(c, getNode);
    }
  }

  private fixAttributes(id: number, attrs: Record<string, unknown>, getNode: (id: number) => Node | null): void {
    if (!('value' in attrs) && !('placeholder' in attrs)) return;
    const el = getNode(id);
    if (!(el instanceof Element) || !this.isSensitiveInput(el)) return;
    for (const k of ['value', 'placeholder']) {
      const v = attrs[k];
      if (typeof v === 'string' && v !== '') attrs[k] = MASK;
    }
  }
}

// The parts of rrweb's event shapes this pass reads (@rrweb/types).
export interface SNode {
  type: number;
  id: number;
  tagName?: string;
  attributes?: Record<string, unknown>;
  childNodes?: SNode[];
}
export interface IncrementalData {
  source: number;
  id: number;
  text?: string;
  adds?: { node: SNode }[];
  attributes?: { id: number; attributes: Record<string, unknown> }[];
}
export interface RrEvent {
  type: number;
  timestamp: number;
  data: { [k: string]: unknown };
}
