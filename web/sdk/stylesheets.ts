// The stylesheet fallback on the visitor's side (docs/proxy.md, "Fallback"): when an agent's
// viewer cannot load a stylesheet through the platform's proxy (an intranet, a site that needs
// the visitor's cookies), it sends asset_request; the SDK reads that sheet's rules in this page
// and uploads their text, then answers asset_ready (or asset_unavailable with a reason).
//
// Only a URL that is the href of a sheet of this document is read: an agent can never make the
// visitor's browser fetch anything. Each URL is read and uploaded at most once per page (the
// upload counts against the session's byte budget); a later request for it (another agent, a
// viewer reloaded) gets the same answer again, a failed upload included.
import type { AssetAnswer, AssetUnavailableReason } from '../protocol';

export const MAX_STYLESHEET_BYTES = 1 << 20;

/** The parts of a CSSStyleSheet this reads. */
export interface SheetLike {
  href: string | null;
  readonly cssRules: ArrayLike<{ cssText: string }>;
}

export interface StylesheetSeams {
  /** The document's style sheets (document.styleSheets). */
  sheets(): Iterable<SheetLike>;
  /** POST {url, text} to GET /v1/token/session's stylesheet_upload_url; resolves true on a 2xx answer. */
  upload(url: string, text: string): Promise<boolean>;
  /** Sends an answer on the relay. */
  send(answer: AssetAnswer): void;
}

export class Stylesheets {
  private readonly answers = new Map<string, Promise<AssetAnswer>>();
  uploads = 0;

  constructor(private readonly seams: StylesheetSeams) {}

  /** An agent's asset_request for url: answers once the sheet is uploaded or cannot be. */
  async request(url: string): Promise<AssetAnswer> {
    let p = this.answers.get(url);
    if (!p) {
      p = this.answer(url);
      this.answers.set(url, p);
    }
    const a = await p;
    this.seams.send(a);
    return a;
  }

  private async answer(url: string): Promise<AssetAnswer> {
    const no = (reason: AssetUnavailableReason): AssetAnswer => ({ type: 'asset_unavailable', url, reason });
    let sheet: SheetLike | null = null;
    for (const s of this.seams.sheets()) {
      if (s.href === url) {
        sheet = s;
        break;
      }
    }
    if (!sheet) return no('not_found');
    let text: string;
    try {
      const rules = sheet.cssRules; // a cross-origin sheet without CORS throws SecurityError
      const parts: string[] = [];
      let bytes = 0;
      for (let i = 0; i < rules.length; i++) {
        const t = rules[i].cssText;
        bytes += t.length + 1; // UTF-16 units: a cheap lower bound of the UTF-8 size, checked below
        if (bytes > MAX_STYLESHEET_BYTES) return no('too_large');
        parts.push(t);
      }
      text = parts.join('\n');
    } catch {
      return no('unreadable');
    }
    if (new TextEncoder().encode(text).length > MAX_STYLESHEET_BYTES) return no('too_large');
    this.uploads++;
    let ok = false;
    try {
      ok = await this.seams.upload(url, text);
    } catch {
      ok = false;
    }
    return ok ? { type: 'asset_ready', url } : no('upload_failed');
  }
}
