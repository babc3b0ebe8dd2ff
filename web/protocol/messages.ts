// Text (control) messages of docs/protocol.md, both directions. Types only, plus the parser
// that every receiver uses; one place for their shapes.

export interface AgentRef { id: string; name: string | null }
export type RemoteControl = 'none' | 'granted' | 'denied' | 'revoked';
export type ConsentDecision = 'granted' | 'denied' | 'revoked';

export type ControlAction =
  | { type: 'pointer'; x: number; y: number; ref?: string }
  | { type: 'highlight'; x: number; y: number; w: number; h: number; ref?: string }
  | { type: 'scroll'; x: number; y: number; ref?: string }
  | { type: 'click'; x: number; y: number; ref?: string }
  | { type: 'key'; key: string; ref?: string }
  | { type: 'request_control'; ref?: string }
  | { type: 'release_control'; ref?: string }
  | { type: 'asset_request'; url: string; ref?: string };

/** Why the visitor's SDK cannot upload a stylesheet (docs/proxy.md, "Fallback"). */
export type AssetUnavailableReason = 'not_found' | 'unreadable' | 'too_large' | 'upload_failed';
/** The visitor's answer to an asset_request, passed by the relay to every agent. */
export type AssetAnswer =
  | { type: 'asset_ready'; url: string }
  | { type: 'asset_unavailable'; url: string; reason: AssetUnavailableReason | string };

// Relay -> visitor
export interface VisitorHello {
  type: 'hello'; role: 'visitor'; session_id: string; have: number; next_seq: number;
  permissions: { remote_control: 'ask' | 'off' }; agents: AgentRef[];
  limits: { max_frame_bytes: number; frames_per_second: number; bytes_per_second: number };
}
export type ToVisitor =
  | VisitorHello
  | { type: 'ack'; seq: number }
  | { type: 'resend'; from: number }
  | { type: 'slow_down'; from: number; retry_after_ms: number; reason: string }
  | { type: 'snapshot_request'; reason: string }
  | { type: 'agent_joined'; agent: AgentRef }
  | { type: 'agent_left'; agent: AgentRef }
  | { type: 'control'; agent: AgentRef; action: ControlAction }
  | { type: 'refused'; ref?: string; action: string; reason: string };

// Visitor -> relay
export interface ConsentMessage { type: 'consent'; agent_id?: string; remote_control: ConsentDecision }
export type FromVisitor = ConsentMessage | AssetAnswer;

// Relay -> agent
export interface AgentHello {
  type: 'hello'; role: 'agent'; session_id: string; visitor: 'connected' | 'disconnected';
  resume: 'continue' | 'reset'; from: number; permissions: { remote_control: 'ask' | 'off' };
  remote_control: RemoteControl;
}
export type ToAgent =
  | AgentHello
  | { type: 'reset'; seq: number; reason: string }
  | { type: 'waiting_snapshot' }
  | { type: 'visitor'; state: 'connected' | 'disconnected' }
  | { type: 'consent'; remote_control: RemoteControl }
  | { type: 'refused'; ref?: string; action: string; reason: string }
  | { type: 'session_ended'; reason: string }
  | { type: 'agent_joined'; agent: AgentRef }
  | { type: 'agent_left'; agent: AgentRef }
  | AssetAnswer;

/** Parses a text message; null when it is not a JSON object with a string `type`. */
export function parseMessage<T extends { type: string }>(text: string): T | null {
  try {
    const v = JSON.parse(text);
    return v && typeof v === 'object' && !Array.isArray(v) && typeof v.type === 'string' ? (v as T) : null;
  } catch {
    return null;
  }
}

/** Close codes the clients act on (docs/protocol.md, "Close codes"). */
export const CLOSE = {
  NORMAL: 1000,
  RESTARTING: 1012,
  SESSION_ENDED: 4001,
  REPLACED: 4002,
  TOKEN_EXPIRED: 4003,
  TOO_SLOW: 4008,
  /* Refused after the upgrade by a node of a cluster (docs/cluster.md): the reason is JSON with
   * `code` and, except for AGENT_LIMIT, `retry_ms`. */
  RATE_LIMITED: 4029,
  SESSION_LIMIT: 4030,
  AGENT_LIMIT: 4031,
  CLUSTER_UNAVAILABLE: 4503,
} as const;

/** Close codes whose JSON reason says how long to wait before reconnecting (retry_ms). */
export function retryAfterClose(code: number, reason: string): number {
  if (
    code !== CLOSE.RESTARTING &&
    code !== CLOSE.RATE_LIMITED &&
    code !== CLOSE.SESSION_LIMIT &&
    code !== CLOSE.CLUSTER_UNAVAILABLE
  )
    return 0;
  try {
    const ms = Number(JSON.parse(reason).retry_ms);
    return Number.isFinite(ms) && ms > 0 ? Math.min(ms, 300_000) : 0;
  } catch {
    return 0; // no retry_ms: plain backoff
  }
}

/** Close codes after which a client must not reconnect. */
export function isFinalClose(code: number): boolean {
  return (
    code === CLOSE.SESSION_ENDED ||
    code === CLOSE.REPLACED ||
    code === CLOSE.AGENT_LIMIT ||
    code === 1007 ||
    code === 1008 ||
    code === 1009
  );
}

/** Subprotocols (docs/protocol.md, "Connecting"). */
export const SUBPROTOCOL_VISITOR = 'cobrowse.visitor.v1';
export const SUBPROTOCOL_AGENT = 'cobrowse.v1';

/** The relay URL with the token and, when resuming, the last seq sent or received. */
export function relayUrl(base: string, token: string, resume?: number): string {
  const u = new URL(base);
  u.searchParams.set('access_token', token);
  if (resume !== undefined && resume > 0) u.searchParams.set('resume', String(resume));
  return u.toString();
}
