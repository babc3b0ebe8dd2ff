// The agent token and the session context (the REST side of the viewer).
// The token arrives in the URL fragment (#token=<JWT>), never in a URL a server sees: it is read
// once, removed from the address bar, and kept in memory only (no storage).

export interface Branding {
  product_name?: string | null;
  logo_url?: string | null;
  primary_color?: string | null;
  accent_color?: string | null;
  consent_text?: string | null;
}

/** GET /v1/token/session for an agent token. */
export interface SessionContext {
  session_id: string;
  tenant_id?: string;
  role: string;
  status: string;
  join_code?: string | null;
  relay_url: string;
  permissions: { remote_control: 'ask' | 'off' };
  agent?: { id: string; name: string | null } | null;
  branding?: Branding | null;
  masking?: unknown;
  allowed_origins?: string[];
  /** The tenant's extra origins of stylesheets, fonts and images (docs/proxy.md). */
  asset_origins?: string[];
  /** `/v1/proxy/<cap>`: the base of this session's proxy URLs; absent on older servers. */
  proxy_base?: string | null;
  expires_at?: string | null;
}

export class HttpError extends Error {
  constructor(readonly status: number, readonly code: string) {
    super(`HTTP ${status}${code ? ` (${code})` : ''}`);
  }
}

/** Reads the token from the fragment and removes the fragment from the address bar. */
export function takeTokenFromFragment(): string | null {
  const hash = location.hash.startsWith('#') ? location.hash.slice(1) : location.hash;
  const params = new URLSearchParams(hash);
  const token = params.get('token');
  if (location.hash) {
    // Keep the path and query, drop the fragment (and with it the token) from the history entry.
    history.replaceState(history.state, '', location.pathname + location.search);
  }
  return token && token.trim() ? token.trim() : null;
}

async function errorOf(res: Response): Promise<HttpError> {
  let code = '';
  try {
    const body = await res.json();
    if (body && typeof body.code === 'string') code = body.code;
  } catch {
    /* not JSON */
  }
  return new HttpError(res.status, code);
}

/** The session as this token's holder may see it. Throws HttpError on a non-2xx answer. */
export async function fetchContext(token: string): Promise<SessionContext> {
  const res = await fetch('/v1/token/session', {
    method: 'GET',
    headers: { Authorization: `Bearer ${token}`, Accept: 'application/json' },
    credentials: 'omit',
    cache: 'no-store',
    referrerPolicy: 'no-referrer',
  });
  if (!res.ok) throw await errorOf(res);
  const ctx = (await res.json()) as SessionContext;
  if (!ctx || typeof ctx.relay_url !== 'string' || typeof ctx.session_id !== 'string') {
    throw new HttpError(res.status, 'bad_context');
  }
  return ctx;
}

/** Ends the session (end_reason ended_by_agent). */
export async function endSession(token: string): Promise<void> {
  const res = await fetch('/v1/token/session/end', {
    method: 'POST',
    headers: { Authorization: `Bearer ${token}`, Accept: 'application/json' },
    credentials: 'omit',
    cache: 'no-store',
    referrerPolicy: 'no-referrer',
  });
  // 404/409: already ended; that is what the agent wanted.
  if (!res.ok && res.status !== 404 && res.status !== 409) throw await errorOf(res);
}

/** The relay base URL as an absolute ws(s) URL (the API may answer a relative or http URL). */
export function absoluteRelayBase(relayUrl: string): string {
  const u = new URL(relayUrl, location.href);
  if (u.protocol === 'http:') u.protocol = 'ws:';
  else if (u.protocol === 'https:') u.protocol = 'wss:';
  return u.toString();
}
