// What survives a page load in the same tab: the session, the next sequence number, and the
// visitor's decisions. sessionStorage is per tab and per origin, which is exactly the scope of a
// co-browsing session that follows the visitor through the site.
import type { CreatedSession } from './api';

const KEY = 'cobrowse.v1';

export interface Stored {
  session: CreatedSession;
  nextSeq: number;
  viewConsent: boolean;
}

function storage(): Storage | null {
  try {
    return window.sessionStorage;
  } catch {
    return null; // storage disabled: the session then lasts one page
  }
}

export function load(): Stored | null {
  try {
    const raw = storage()?.getItem(KEY);
    if (!raw) return null;
    const v = JSON.parse(raw) as Stored;
    if (!v?.session?.visitor_token || !Number.isSafeInteger(v.nextSeq)) return null;
    if (Date.parse(v.session.expires_at) <= Date.now()) return null;
    return v;
  } catch {
    return null;
  }
}

export function save(v: Stored): void {
  try {
    storage()?.setItem(KEY, JSON.stringify(v));
  } catch {
    /* quota or disabled: the session still works on this page */
  }
}

export function clear(): void {
  try {
    storage()?.removeItem(KEY);
  } catch {
    /* nothing to clear */
  }
}
