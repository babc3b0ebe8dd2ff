// Executes an agent's control actions on the visitor's page, once the relay forwarded them
// (the relay already checked permissions and consent; the SDK checks its own consent again).
// Coordinates are CSS pixels of the visitor's viewport; scroll targets are document offsets.
import type { ControlAction } from '../protocol';
import type { MaskPolicy } from './masking';
import type { VisitorUi } from './ui';

const TEXT_TYPES = new Set(['', 'text', 'search', 'email', 'url', 'tel', 'number', 'password']);

function mouse(type: string, x: number, y: number, extra: MouseEventInit = {}): MouseEvent {
  const init: MouseEventInit = { bubbles: true, cancelable: true, composed: true, clientX: x, clientY: y, view: window, button: 0, ...extra };
  return type.startsWith('pointer') ? new PointerEvent(type, { ...init, pointerId: 1, pointerType: 'mouse', isPrimary: true }) : new MouseEvent(type, init);
}

function isTextField(el: Element | null): el is HTMLInputElement | HTMLTextAreaElement {
  if (el instanceof HTMLTextAreaElement) return !el.readOnly && !el.disabled;
  return el instanceof HTMLInputElement && TEXT_TYPES.has(el.type) && !el.readOnly && !el.disabled;
}

export class ControlExecutor {
  constructor(private readonly ui: VisitorUi, private readonly policy: MaskPolicy) {}

  /** Runs an action that needs control (scroll, click, key). Returns what it did, for logs. */
  run(a: ControlAction): string {
    switch (a.type) {
      case 'scroll':
        window.scrollTo({ left: Math.max(0, a.x), top: Math.max(0, a.y), behavior: 'instant' as ScrollBehavior });
        return 'scrolled';
      case 'click':
        return this.click(a.x, a.y);
      case 'key':
        return this.key(a.key);
      default:
        return 'ignored';
    }
  }

  private click(x: number, y: number): string {
    const target = document.elementFromPoint(x, y);
    if (!target || this.ui.contains(target)) return 'no target';
    target.dispatchEvent(mouse('pointerdown', x, y, { buttons: 1 }));
    target.dispatchEvent(mouse('mousedown', x, y, { buttons: 1 }));
    const focusable = target.closest<HTMLElement>('input, textarea, select, button, a[href], [tabindex], [contenteditable=""], [contenteditable="true"]');
    focusable?.focus({ preventScroll: true });
    target.dispatchEvent(mouse('pointerup', x, y));
    target.dispatchEvent(mouse('mouseup', x, y));
    // click() runs the element's activation behaviour (links, checkboxes, submit buttons) as a
    // real click does; a dispatched MouseEvent('click') would not for all of them.
    if (target instanceof HTMLElement) target.click();
    else target.dispatchEvent(mouse('click', x, y));
    return `clicked ${target.tagName.toLowerCase()}`;
  }

  private key(key: string): string {
    const el = document.activeElement;
    if (!el || this.ui.contains(el)) return 'no focus';
    if (el instanceof Element && this.policy.isSensitiveInput(el)) return 'refused: masked field';
    if (isTextField(el)) {
      const done = edit(el, key);
      if (done === null) return 'ignored key';
      if (done === 'submit') {
        el.form?.requestSubmit();
        return 'submitted';
      }
      el.dispatchEvent(new InputEvent('input', { bubbles: true, inputType: done, data: [...key].length === 1 ? key : null }));
      return 'typed';
    }
    if (el instanceof HTMLElement && el.isContentEditable && [...key].length === 1) {
      document.execCommand('insertText', false, key);
      return 'typed';
    }
    if (key === 'Tab') return 'ignored key';
    return 'no text field';
  }
}

/** Applies one key to a text field; returns the InputEvent inputType, 'submit', or null. */
function edit(el: HTMLInputElement | HTMLTextAreaElement, key: string): string | 'submit' | null {
  if (key === 'Enter' && !(el instanceof HTMLTextAreaElement)) return 'submit';
  const text = key === 'Enter' ? '\n' : [...key].length === 1 ? key : null;
  if (text === null && key !== 'Backspace' && key !== 'Delete') return null;
  let start: number | null = null;
  try {
    start = el.selectionStart; // null (or a throw) for email and number inputs
  } catch {
    start = null;
  }
  if (start === null) {
    // No selection API: edit at the end through the native setter, as typing would.
    const v = el.value;
    const next = text !== null ? v + text : key === 'Backspace' ? [...v].slice(0, -1).join('') : v;
    const setter = Object.getOwnPropertyDescriptor(Object.getPrototypeOf(el), 'value')?.set;
    if (setter) setter.call(el, next);
    else el.value = next;
    return text !== null ? 'insertText' : 'deleteContentBackward';
  }
  const end = el.selectionEnd ?? start;
  if (text !== null) el.setRangeText(text, start, end, 'end');
  else if (key === 'Backspace') el.setRangeText('', start === end ? Math.max(0, start - 1) : start, end, 'end');
  else el.setRangeText('', start, start === end ? Math.min(el.value.length, end + 1) : end, 'end');
  return text !== null ? 'insertText' : key === 'Backspace' ? 'deleteContentBackward' : 'deleteContentForward';
}
