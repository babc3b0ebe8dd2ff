// The REST calls of the SDK: create a session with the publishable key, read and end it with
// the session's own visitor token (openapi/openapi.yaml).

export interface Branding {
  product_name: string | null;
  logo_url: string | null;
  primary_color: string | null;
  accent_color: string | null;
  consent_text: string | null;
}
export interface Masking {
  selectors: string[];
  mask_all_inputs: boolean;
}
export interface CreatedSession {
  id: string;
  join_code: string;
  status: string;
  relay_url: string;
  visitor_token: string;
  expires_at: string;
  permissions: { remote_control: 'ask' | 'off' };
  branding?: Branding;
  masking?: Masking;
}
export interface VisitorInfo {
  external_id?: string;
  name?: string;
  email?: string;
  custom?: Record<string, unknown>;
}

export class ApiError extends Error {
  constructor(readonly status: number, readonly code: string, message: string) {
    super(message);
  }
}

async function call<T>(url: string, init: RequestInit): Promise<T> {
  const res = await fetch(url, { ...init, credentials: 'omit', cache: 'no-store' });
  const text = await res.text();
  let body: Record<string, unknown> = {};
  try {
    body = text ? JSON.parse(text) : {};
  } catch {
    /* a non-JSON answer (a proxy's error page): reported below with the status */
  }
  if (!res.ok) {
    throw new ApiError(res.status, String(body.code ?? 'http_error'), String(body.detail ?? `HTTP ${res.status}`));
  }
  return body as T;
}

export function createSession(api: string, key: string, visitor: VisitorInfo | undefined): Promise<CreatedSession> {
  return call<CreatedSession>(`${api}/v1/sessions`, {
    method: 'POST',
    headers: { Authorization: `Bearer ${key}`, 'Content-Type': 'application/json' },
    body: JSON.stringify(visitor ? { visitor } : {}),
  });
}

export interface SessionContext {
  session_id: string;
  status: string;
  /** Visitors only: where stylesheet uploads go (the platform's proxy listener). */
  stylesheet_upload_url?: string | null;
}

export function getSession(api: string, token: string): Promise<SessionContext> {
  return call<SessionContext>(`${api}/v1/token/session`, { headers: { Authorization: `Bearer ${token}` } });
}

export function endSession(api: string, token: string): Promise<SessionContext> {
  return call<SessionContext>(`${api}/v1/token/session/end`, {
    method: 'POST',
    headers: { Authorization: `Bearer ${token}` },
  });
}

/** The stylesheet fallback's upload (docs/proxy.md, "Fallback"): the text of a sheet of this page,
 * to `to`, GET /v1/token/session's stylesheet_upload_url. */
export async function uploadStylesheet(to: string, token: string, url: string, text: string): Promise<boolean> {
  const res = await fetch(to, {
    method: 'POST',
    headers: { Authorization: `Bearer ${token}`, 'Content-Type': 'application/json' },
    body: JSON.stringify({ url, text }),
    credentials: 'omit',
    cache: 'no-store',
  });
  if (!res.ok) console.warn(`[co-browsing] stylesheet upload: HTTP ${res.status}`);
  return res.ok;
}
