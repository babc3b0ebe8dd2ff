// The URLs a piece of CSS text refers to (url() and @import), found by a tokenizer that follows
// CSS Syntax Level 3 (https://www.w3.org/TR/css-syntax-3/#tokenization) far enough to never be
// fooled: comments, strings and escapes are consumed as tokens, so `/* url(x) */`, `"url(x)"`,
// `xurl(x)` and `a\"b` are not URLs, and `u\72l(x)` or `URL( "x" )` are. A regular expression
// over the text cannot tell these apart. Only the spans of URLs are rewritten; every other byte
// stays as it was.

export type CssUrlKind = 'asset' | 'css';

export interface CssUrl {
  /** The span to replace: the whole `url(...)` token, or the string token (quotes included). */
  start: number;
  end: number;
  /** The URL with escapes decoded. */
  url: string;
  /** `css` after @import, `asset` otherwise (images, fonts). */
  kind: CssUrlKind;
  /** `url`: an unquoted url token (replaced by `url("...")`); `string`: a quoted string. */
  form: 'url' | 'string';
}

const isWs = (c: string): boolean => c === ' ' || c === '\t' || c === '\n' || c === '\r' || c === '\f';
const isHex = (c: string): boolean => /^[0-9a-fA-F]$/.test(c);
const isNameStart = (c: string): boolean => /^[A-Za-z_]$/.test(c) || c.charCodeAt(0) >= 0x80;
const isName = (c: string): boolean => isNameStart(c) || /^[0-9-]$/.test(c);
const isNonPrintable = (c: string): boolean => {
  const n = c.charCodeAt(0);
  return n <= 8 || n === 0x0b || (n >= 0x0e && n <= 0x1f) || n === 0x7f;
};

class Scanner {
  i = 0;
  constructor(readonly s: string) {}

  at(k = 0): string {
    return this.s.charAt(this.i + k);
  }

  /** A backslash at i+k starts a valid escape (not followed by a newline or the end). */
  validEscape(k = 0): boolean {
    return this.at(k) === '\\' && this.i + k + 1 < this.s.length && this.at(k + 1) !== '\n' && this.at(k + 1) !== '\r' && this.at(k + 1) !== '\f';
  }

  /** Consumes an escape after its backslash (already consumed); returns the character. */
  escape(): string {
    if (this.i >= this.s.length) return '\uFFFD';
    const c = this.at();
    if (!isHex(c)) {
      const ch = String.fromCodePoint(this.s.codePointAt(this.i)!);
      this.i += ch.length;
      return ch;
    }
    let hex = '';
    while (hex.length < 6 && isHex(this.at())) hex += this.s[this.i++];
    if (this.at() === '\r' && this.at(1) === '\n') this.i += 2;
    else if (isWs(this.at())) this.i++;
    const n = parseInt(hex, 16);
    return n === 0 || (n >= 0xd800 && n <= 0xdfff) || n > 0x10ffff ? '\uFFFD' : String.fromCodePoint(n);
  }

  /** Would the next characters start an identifier? */
  identStart(): boolean {
    const c = this.at();
    if (c === '-') return isNameStart(this.at(1)) || this.at(1) === '-' || this.validEscape(1);
    return isNameStart(c) || this.validEscape();
  }

  /** Consumes a name (identifier characters and escapes); returns it decoded. */
  name(): string {
    let out = '';
    for (;;) {
      const c = this.at();
      if (c !== '' && isName(c)) {
        out += c;
        this.i++;
      } else if (this.validEscape()) {
        this.i++;
        out += this.escape();
      } else {
        return out;
      }
    }
  }

  /** Consumes a string token from its opening quote; returns its value, or null if it is bad. */
  string(): string | null {
    const q = this.s[this.i++];
    let out = '';
    while (this.i < this.s.length) {
      const c = this.s[this.i];
      if (c === q) {
        this.i++;
        return out;
      }
      if (c === '\n' || c === '\r' || c === '\f') return null; // bad string: the newline is not part of it
      this.i++;
      if (c === '\\') {
        if (this.i >= this.s.length) continue;
        const n = this.s[this.i];
        if (n === '\n' || n === '\f') this.i++;
        else if (n === '\r') this.i += this.at(1) === '\n' ? 2 : 1;
        else out += this.escape();
      } else {
        out += c;
      }
    }
    return out; // EOF in a string: a parse error, but the string token stands
  }

  skipWs(): void {
    while (isWs(this.at())) this.i++;
  }

  /** Skips whitespace and comments (between @import and its URL). */
  skipWsAndComments(): void {
    for (;;) {
      this.skipWs();
      if (this.at() === '/' && this.at(1) === '*') this.comment();
      else return;
    }
  }

  comment(): void {
    const end = this.s.indexOf('*/', this.i + 2);
    this.i = end < 0 ? this.s.length : end + 2;
  }

  /** After `url(` and its whitespace: an unquoted url token up to `)`; null for a bad url. */
  urlToken(): string | null {
    let out = '';
    while (this.i < this.s.length) {
      const c = this.s[this.i];
      if (c === ')') {
        this.i++;
        return out;
      }
      if (isWs(c)) {
        this.skipWs();
        if (this.at() === ')' || this.i >= this.s.length) {
          if (this.i < this.s.length) this.i++;
          return out;
        }
        this.badUrlRest();
        return null;
      }
      if (c === '"' || c === "'" || c === '(' || isNonPrintable(c)) {
        this.badUrlRest();
        return null;
      }
      if (c === '\\') {
        if (!this.validEscape()) {
          this.badUrlRest();
          return null;
        }
        this.i++;
        out += this.escape();
        continue;
      }
      out += c;
      this.i++;
    }
    return out; // EOF: a parse error, the token stands
  }

  /** The remnants of a bad url: up to and including `)`, escapes skipped. */
  private badUrlRest(): void {
    while (this.i < this.s.length) {
      const c = this.s[this.i];
      if (c === ')') {
        this.i++;
        return;
      }
      if (this.validEscape()) {
        this.i++;
        this.escape();
      } else {
        this.i++;
      }
    }
  }
}

/** Every url() and @import URL of a style sheet or declaration list, in order. */
export function scanCssUrls(text: string): CssUrl[] {
  const out: CssUrl[] = [];
  const sc = new Scanner(text);
  let importNext = false; // the previous token was @import
  while (sc.i < text.length) {
    const c = sc.at();
    const start = sc.i;
    if (c === '/' && sc.at(1) === '*') {
      sc.comment();
      continue;
    }
    if (isWs(c)) {
      sc.skipWs();
      continue;
    }
    const kind: CssUrlKind = importNext ? 'css' : 'asset';
    importNext = false;
    if (c === '"' || c === "'") {
      const v = sc.string();
      if (v !== null && kind === 'css') out.push({ start, end: sc.i, url: v, kind, form: 'string' });
    } else if (c === '@' && (sc.i++, sc.identStart())) {
      importNext = sc.name().toLowerCase() === 'import';
    } else if (sc.identStart()) {
      const name = sc.name();
      if (sc.at() !== '(') continue;
      sc.i++;
      if (name.toLowerCase() !== 'url') continue; // another function: its arguments are scanned as tokens
      sc.skipWs();
      const q = sc.at();
      if (q === '"' || q === "'") {
        const sStart = sc.i;
        const v = sc.string();
        if (v !== null) out.push({ start: sStart, end: sc.i, url: v, kind, form: 'string' });
      } else {
        const v = sc.urlToken();
        if (v !== null) out.push({ start, end: sc.i, url: v, kind, form: 'url' });
      }
    } else if (c === '\\') {
      sc.i++; // an invalid escape (backslash-newline): a delim token
    } else if (/^[0-9]$/.test(c) || ((c === '.' || c === '+' || c === '-') && /^[0-9]$/.test(sc.at(1)))) {
      // A number, and the unit of a dimension (so `3url(` is not a url)
      sc.i++;
      while (/^[0-9.eE]$/.test(sc.at())) sc.i++;
      if (sc.identStart()) sc.name();
    } else {
      sc.i += text.codePointAt(sc.i)! > 0xffff ? 2 : 1;
    }
  }
  return out;
}

/** A CSS string token holding url, safe in any context. */
export function cssString(url: string): string {
  return '"' + url.replace(/[\\"]/g, (m) => '\\' + m).replace(/[\n\r\f]/g, (m) => '\\' + m.charCodeAt(0).toString(16) + ' ') + '"';
}

/**
 * The text with each URL that map(url, kind) answers for replaced (an unquoted url token becomes
 * `url("...")`, a string a string); map answers null to keep a URL as it is.
 */
export function rewriteCssUrls(text: string, map: (url: string, kind: CssUrlKind) => string | null): string {
  const urls = scanCssUrls(text);
  if (urls.length === 0) return text;
  let out = '';
  let last = 0;
  for (const u of urls) {
    const to = map(u.url, u.kind);
    if (to === null) continue;
    out += text.slice(last, u.start) + (u.form === 'url' ? `url(${cssString(to)})` : cssString(to));
    last = u.end;
  }
  return last === 0 ? text : out + text.slice(last);
}
