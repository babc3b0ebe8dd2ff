// The visitor page's stylesheets, fonts and images, loaded through the platform's proxy
// (docs/proxy.md): the URLs in what the Replayer gets are rewritten before it gets it, in full
// snapshots (the node tree), mutations (added nodes, attribute and text changes) and style sheet
// rule events. Only absolute http(s) URLs of the session's allowed or asset origins; data:, blob:
// and other origins stay as they are (the proxy would refuse them). Without a proxy_base (an
// older server) nothing changes.
//
// The fallback: a proxied stylesheet that fails to load is asked for once per URL and page
// (asset_request); when the visitor's SDK uploaded it (asset_ready), the viewer loads the proxy
// URL again with ?r=N (docs/proxy.md, "Fallback").
import { rewriteCssUrls } from './cssurl';
import type { CssUrlKind } from './cssurl';

/* eslint-disable @typescript-eslint/no-explicit-any */
type SNode = any; // a serialized rrweb-snapshot node

const NODE_ELEMENT = 2;
const NODE_TEXT = 3;
const EV_FULL_SNAPSHOT = 2;
const EV_INCREMENTAL = 3;
const SRC_MUTATION = 0;
const SRC_STYLE_SHEET_RULE = 8;

/** base64url without padding of the URL's UTF-8 bytes (docs/proxy.md, `target`). */
export function base64url(s: string): string {
  const bytes = new TextEncoder().encode(s);
  let bin = '';
  for (let i = 0; i < bytes.length; i++) bin += String.fromCharCode(bytes[i]);
  return btoa(bin).replace(/\+/g, '-').replace(/\//g, '_').replace(/=+$/, '');
}

/** The image candidates of a srcset with each URL mapped (HTML's parsing rules, simplified:
 * a URL is a run of non-whitespace, descriptors run to the next comma outside parentheses). */
export function rewriteSrcset(srcset: string, map: (url: string) => string | null): string {
  const out: string[] = [];
  let i = 0;
  let changed = false;
  const n = srcset.length;
  while (i < n) {
    while (i < n && /[\s,]/.test(srcset[i])) i++;
    if (i >= n) break;
    let j = i;
    while (j < n && !/\s/.test(srcset[j])) j++;
    let url = srcset.slice(i, j);
    let desc = '';
    if (url.endsWith(',')) {
      url = url.replace(/,+$/, '');
    } else {
      let k = j;
      let depth = 0;
      while (k < n && (srcset[k] !== ',' || depth > 0)) {
        if (srcset[k] === '(') depth++;
        else if (srcset[k] === ')' && depth > 0) depth--;
        k++;
      }
      desc = srcset.slice(j, k).trim();
      j = k + 1;
    }
    const to = map(url);
    if (to !== null) changed = true;
    out.push(desc ? `${to ?? url} ${desc}` : (to ?? url));
    i = j;
  }
  return changed ? out.join(', ') : srcset;
}

export interface AssetStats {
  /** URLs rewritten to proxy URLs (stylesheets, images and fonts, CSS text included). */
  rewritten: number;
  /** Proxied stylesheets that failed to load in the replay. */
  failed: number;
  /** asset_request messages sent. */
  requested: number;
  /** asset_ready and asset_unavailable answers for URLs this viewer asked for. */
  ready: number;
  unavailable: number;
  /** Stylesheet links pointed at their proxy URL again after asset_ready. */
  reloads: number;
  /** Proxied images loaded once more after they failed (the proxy may have been busy). */
  imageRetries: number;
}

/** A node id's element name (lowercase) in the replay, for attribute and text changes. */
export interface NodeLookup {
  tagOf(id: number): string | null;
  /** The element of a text node's parent, or null. */
  parentTagOf(id: number): string | null;
  attrOf(id: number, name: string): string | null;
}

export class Assets {
  private readonly base: string;
  private readonly origins: Set<string>;
  /** Proxied stylesheets: original URL -> times it was made ready (the ?r=N). */
  private readonly readyCount = new Map<string, number>();
  /** Original URLs asked for on this page (one asset_request per URL per page). */
  private asked = new Set<string>();
  /** Original URLs whose proxied stylesheet failed on this page. */
  private failedUrls = new Set<string>();
  readonly stats: AssetStats = { rewritten: 0, failed: 0, requested: 0, ready: 0, unavailable: 0, reloads: 0, imageRetries: 0 };

  /**
   * proxyBase: GET /v1/token/session's `proxy_base` (the proxy listener's URL, absolute; a relative one resolves against the viewer's);
   * origins: its `allowed_origins` and `asset_origins`. send: an asset_request on the relay.
   */
  constructor(proxyBase: string, origins: string[], private readonly send: (url: string) => boolean, here: string = location.href) {
    this.base = new URL(proxyBase, here).toString().replace(/\/+$/, '');
    this.origins = new Set();
    for (const o of origins) {
      try {
        const u = new URL(o);
        if (u.protocol === 'http:' || u.protocol === 'https:') this.origins.add(u.origin);
      } catch {
        /* not a literal origin (a wildcard pattern): never matches */
      }
    }
  }

  /** The proxy URL for url, or null when it must stay as it is. */
  proxied(url: string, kind: CssUrlKind): string | null {
    if (url.length > 2048) return null;
    let u: URL;
    try {
      u = new URL(url);
    } catch {
      return null; // relative or not a URL: rrweb made the page's URLs absolute already
    }
    if ((u.protocol !== 'http:' && u.protocol !== 'https:') || !this.origins.has(u.origin)) return null;
    if (url.startsWith(this.base + '/')) return null; // ours already
    this.stats.rewritten++;
    const p = `${this.base}/${kind}/${base64url(url)}`;
    const r = kind === 'css' ? this.readyCount.get(url) : undefined;
    return r ? `${p}?r=${r}` : p;
  }

  /** The original URL of one of our stylesheet proxy URLs, or null. */
  originalOf(proxyUrl: string): string | null {
    const prefix = `${this.base}/css/`;
    if (!proxyUrl.startsWith(prefix)) return null;
    const t = proxyUrl.slice(prefix.length).split(/[?#/]/)[0];
    try {
      const bin = atob(t.replace(/-/g, '+').replace(/_/g, '/'));
      return new TextDecoder().decode(Uint8Array.from(bin, (c) => c.charCodeAt(0)));
    } catch {
      return null;
    }
  }

  css(text: string): string {
    return rewriteCssUrls(text, (u, kind) => this.proxied(u, kind));
  }

  /** A new page (a snapshot): stylesheets may be asked for again. */
  newPage(): void {
    this.asked = new Set();
    this.failedUrls = new Set();
  }

  /** Rewrites the URLs of one rrweb event in place (it is the viewer's own decoded copy). */
  event(e: any, look: NodeLookup): void {
    if (!e || !e.data) return;
    if (e.type === EV_FULL_SNAPSHOT) {
      this.node(e.data.node, null);
    } else if (e.type === EV_INCREMENTAL && e.data.source === SRC_MUTATION) {
      this.mutation(e.data, look);
    } else if (e.type === EV_INCREMENTAL && e.data.source === SRC_STYLE_SHEET_RULE) {
      for (const a of e.data.adds ?? []) if (a && typeof a.rule === 'string') a.rule = this.css(a.rule);
      if (typeof e.data.replace === 'string') e.data.replace = this.css(e.data.replace);
      if (typeof e.data.replaceSync === 'string') e.data.replaceSync = this.css(e.data.replaceSync);
    }
  }

  private mutation(d: any, look: NodeLookup): void {
    const added = new Map<number, string>(); // ids of elements added in this event -> tag
    for (const a of d.adds ?? []) {
      const n = a && a.node;
      if (n && n.type === NODE_ELEMENT && typeof n.id === 'number') added.set(n.id, String(n.tagName).toLowerCase());
    }
    for (const a of d.adds ?? []) {
      if (!a || !a.node) continue;
      const parent = typeof a.parentId === 'number' ? (added.get(a.parentId) ?? look.tagOf(a.parentId)) : null;
      this.node(a.node, parent);
    }
    for (const t of d.texts ?? []) {
      if (t && typeof t.value === 'string' && look.parentTagOf(t.id) === 'style') t.value = this.css(t.value);
    }
    for (const m of d.attributes ?? []) {
      if (!m || !m.attributes || typeof m.id !== 'number') continue;
      const tag = added.get(m.id) ?? look.tagOf(m.id);
      if (!tag) continue;
      const rel = typeof m.attributes.rel === 'string' ? m.attributes.rel : look.attrOf(m.id, 'rel');
      const type = typeof m.attributes.type === 'string' ? m.attributes.type : look.attrOf(m.id, 'type');
      this.attributes(tag, m.attributes, rel, type);
    }
  }

  /** A serialized node and its subtree; parentTag: the element it is added under (for text). */
  private node(n: SNode, parentTag: string | null): void {
    if (!n || typeof n !== 'object') return;
    if (n.type === NODE_TEXT) {
      if (parentTag === 'style' && typeof n.textContent === 'string') n.textContent = this.css(n.textContent);
      return;
    }
    let tag = parentTag;
    if (n.type === NODE_ELEMENT && n.attributes) {
      tag = String(n.tagName).toLowerCase();
      this.attributes(tag, n.attributes, n.attributes.rel, n.attributes.type);
    }
    if (Array.isArray(n.childNodes)) for (const c of n.childNodes) this.node(c, n.type === NODE_ELEMENT ? tag : null);
  }

  /** An element's attributes (a full set, or the changed ones with null for removed). */
  private attributes(tag: string, at: Record<string, any>, rel: unknown, type: unknown): void {
    const asset = (name: string): void => {
      if (typeof at[name] === 'string') at[name] = this.proxied(at[name], 'asset') ?? at[name];
    };
    const srcset = (name: string): void => {
      if (typeof at[name] === 'string') at[name] = rewriteSrcset(at[name], (u) => this.proxied(u, 'asset'));
    };
    if (tag === 'link' && typeof rel === 'string' && /(^|\s)stylesheet(\s|$)/i.test(rel) && typeof at.href === 'string') {
      at.href = this.proxied(at.href, 'css') ?? at.href;
    } else if (tag === 'img' || tag === 'source') {
      asset('src');
      srcset('srcset');
    } else if (tag === 'input' && typeof type === 'string' && type.toLowerCase() === 'image') {
      asset('src');
    } else if (tag === 'video') {
      asset('poster');
    } else if (tag === 'image') {
      asset('href');
      asset('xlink:href');
    }
    if (typeof at._cssText === 'string') at._cssText = this.css(at._cssText);
    const st = at.style;
    if (typeof st === 'string') {
      at.style = this.css(st);
    } else if (st && typeof st === 'object') {
      // rrweb's style diff: {property: value | [value, priority] | false}
      for (const k of Object.keys(st)) {
        const v = st[k];
        if (typeof v === 'string') st[k] = this.css(v);
        else if (Array.isArray(v) && typeof v[0] === 'string') v[0] = this.css(v[0]);
      }
    }
  }

  // ---- the fallback ---------------------------------------------------------------------------

  /** A proxied stylesheet failed to load in the replay: ask the visitor for it, once a page. */
  failed(proxyUrl: string): void {
    const url = this.originalOf(proxyUrl);
    if (url === null) return;
    this.stats.failed++;
    this.failedUrls.add(url);
    if (this.asked.has(url)) return;
    if (this.send(url)) {
      this.asked.add(url);
      this.stats.requested++;
    }
  }

  /**
   * The visitor uploaded url's text: its links in doc point at the proxy again with ?r=N (a new
   * URL, so the browser loads it instead of reusing the failure). Only links that failed here
   * are reloaded: an answer to another agent's request changes nothing that loaded.
   */
  ready(url: string, doc: Document | null): void {
    const n = (this.readyCount.get(url) ?? 0) + 1;
    this.readyCount.set(url, n);
    if (this.asked.has(url)) this.stats.ready++;
    if (!doc) return;
    const p = `${this.base}/css/${base64url(url)}`;
    for (const link of Array.from(doc.querySelectorAll('link[href]'))) {
      const href = link.getAttribute('href') ?? '';
      if (href === p || href.startsWith(p + '?')) {
        if (this.failedUrls.has(url)) {
          link.setAttribute('href', `${p}?r=${n}`);
          this.stats.reloads++;
        }
      }
    }
  }

  /**
   * A proxied image failed to load in the replay. The proxy answers 503 when too many of its
   * HTTP workers already wait for upstream fetches (docs/proxy.md, "Serving a request"), which a
   * page's first load can hit; an image is not asked of the visitor, so it is loaded once more
   * after retryMs with ?r=1 (a new URL: the browser does not reuse the failure). Only once, and
   * only if the page has not changed the src meanwhile.
   */
  retryImage(img: Element, retryMs = 1000): void {
    const src = img.getAttribute('src') ?? '';
    if (!src.startsWith(`${this.base}/asset/`) || src.includes('?')) return;
    this.stats.imageRetries++;
    setTimeout(() => {
      if (img.getAttribute('src') === src) img.setAttribute('src', `${src}?r=1`);
    }, retryMs);
  }

  unavailable(url: string): void {
    if (this.asked.has(url)) this.stats.unavailable++;
  }
}
