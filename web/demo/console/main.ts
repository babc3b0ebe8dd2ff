// The demo agent console ("Acme support desk"), served by cobrowsed at /demo/console/.
// It holds no key: it asks the shop's partner backend (web/demo/server.mjs, ?partner=URL,
// default http://127.0.0.1:8090) for the live sessions and for an embed_url to join one, then
// shows the viewer in an iframe and talks to it over postMessage (docs/viewer.md):
//   in:  {source: 'cb-viewer', type: 'status', state, control, visitor}, only from our own origin
//   out: {source: 'cb-console', action}, with targetOrigin = location.origin

interface SessionSummary {
  id: string;
  join_code: string;
  status: 'pending' | 'active' | 'ended';
  visitor: { name: string | null; email: string | null; external_id: string | null };
  created_at: string;
  started_at: string | null;
}

interface ViewerStatus {
  source: 'cb-viewer';
  type: 'status';
  state: string;
  control: string;
  visitor: string;
}

const POLL_MS = 2000;
const DEFAULT_PARTNER = 'http://127.0.0.1:8090';

const $ = <T extends HTMLElement = HTMLElement>(id: string): T => {
  const el = document.getElementById(id);
  if (!el) throw new Error(`console: #${id} missing`);
  return el as T;
};

function partnerBase(): string {
  const p = new URLSearchParams(location.search).get('partner');
  if (p) {
    try {
      const u = new URL(p);
      if (u.protocol === 'http:' || u.protocol === 'https:') return u.origin;
    } catch {
      /* fall through to the default */
    }
    console.warn('console: ignoring ?partner=', p, '(not an http(s) URL)');
  }
  return DEFAULT_PARTNER;
}

const PARTNER = partnerBase();
const LOOPBACK = new Set(['127.0.0.1', 'localhost', '[::1]']);

const ui = {
  partnerState: $('partner-state'),
  partnerText: $('partner-text'),
  list: $<HTMLUListElement>('sessions'),
  empty: $('sessions-empty'),
  count: $('session-count'),
  codeForm: $<HTMLFormElement>('code-form'),
  codeInput: $<HTMLInputElement>('code-input'),
  codeError: $('code-error'),
  welcome: $('welcome'),
  view: $('session-view'),
  frame: $<HTMLIFrameElement>('viewer-frame'),
  visitor: $('current-visitor'),
  code: $('current-code'),
  state: $('status-state'),
  statusVisitor: $('status-visitor'),
  control: $('status-control'),
  requestControl: $<HTMLButtonElement>('request-control'),
  releaseControl: $<HTMLButtonElement>('release-control'),
  end: $<HTMLButtonElement>('end-session'),
  leave: $<HTMLButtonElement>('leave'),
};

let current: { id: string; code: string; name: string } | null = null;
let viewerOrigin = location.origin;
const rows = new Map<string, HTMLLIElement>();

function formatCode(code: string): string {
  return /^\d{6}$/.test(code) ? `${code.slice(0, 3)} ${code.slice(3)}` : code;
}

function age(iso: string): string {
  const s = Math.max(0, Math.round((Date.now() - Date.parse(iso)) / 1000));
  if (!Number.isFinite(s)) return '';
  if (s < 60) return `${s} s`;
  if (s < 3600) return `${Math.floor(s / 60)} min`;
  return `${Math.floor(s / 3600)} h ${Math.floor((s % 3600) / 60)} min`;
}

async function partner<T>(path: string, init: RequestInit = {}): Promise<T> {
  const res = await fetch(PARTNER + path, { ...init, credentials: 'omit', cache: 'no-store' });
  const text = await res.text();
  let body: { error?: string } & Record<string, unknown> = {};
  try {
    body = text ? JSON.parse(text) : {};
  } catch {
    /* not JSON: reported with the status below */
  }
  if (!res.ok) throw new Error(body.error ?? `HTTP ${res.status}`);
  return body as T;
}

const EMPTY_TEXT = ui.empty.textContent ?? '';

function setPartnerState(state: 'ok' | 'error' | 'connecting', text: string): void {
  ui.partnerState.dataset.state = state;
  ui.partnerText.textContent = text;
  ui.empty.textContent = state === 'error' ? 'The list of sessions is unavailable until the shop backend answers.' : EMPTY_TEXT;
}

// ---- the session list ------------------------------------------------------------------

function renderRow(li: HTMLLIElement, s: SessionSummary): void {
  li.dataset.sessionId = s.id;
  li.dataset.joinCode = s.join_code;
  li.dataset.status = s.status;
  li.classList.toggle('current', current?.id === s.id);
  (li.querySelector('.code') as HTMLElement).textContent = formatCode(s.join_code);
  (li.querySelector('.name') as HTMLElement).textContent = s.visitor.name ?? 'Anonymous visitor';
  (li.querySelector('.email') as HTMLElement).textContent = s.visitor.email ?? s.visitor.external_id ?? '';
  const badge = li.querySelector('.badge') as HTMLElement;
  badge.textContent = s.status === 'active' ? 'On the page' : 'Waiting';
  badge.dataset.status = s.status;
  (li.querySelector('.age') as HTMLElement).textContent = age(s.created_at);
  const btn = li.querySelector('button') as HTMLButtonElement;
  btn.textContent = current?.id === s.id ? 'Viewing' : 'Join';
  btn.disabled = current?.id === s.id;
}

function newRow(s: SessionSummary): HTMLLIElement {
  const li = document.createElement('li');
  li.className = 'session';
  li.innerHTML =
    '<div class="top"><span class="code"></span><span class="badge"></span></div>' +
    '<div class="name"></div><div class="email"></div>' +
    '<div class="bottom"><span class="age"></span><button type="button" class="btn primary join-btn">Join</button></div>';
  (li.querySelector('button') as HTMLButtonElement).addEventListener('click', () => {
    void join(li.dataset.sessionId as string, li.dataset.joinCode as string, (li.querySelector('.name') as HTMLElement).textContent ?? '');
  });
  renderRow(li, s);
  return li;
}

function renderList(sessions: SessionSummary[]): void {
  const seen = new Set<string>();
  let prev: Element | null = null;
  for (const s of sessions) {
    seen.add(s.id);
    let li = rows.get(s.id);
    if (li) renderRow(li, s);
    else {
      li = newRow(s);
      rows.set(s.id, li);
    }
    // Keep the server's order (newest first) without recreating rows (a click in flight stays).
    const want: Element | null = prev ? prev.nextElementSibling : ui.list.firstElementChild;
    if (want !== li) ui.list.insertBefore(li, want);
    prev = li;
  }
  for (const [id, li] of rows) {
    if (!seen.has(id)) {
      li.remove();
      rows.delete(id);
    }
  }
  ui.count.textContent = String(sessions.length);
  ui.empty.hidden = sessions.length > 0;
}

let polling = false;
async function poll(): Promise<void> {
  if (polling) return;
  polling = true;
  try {
    const r = await partner<{ sessions: SessionSummary[] }>('/partner/sessions');
    renderList(r.sessions ?? []);
    setPartnerState('ok', `Shop backend ${new URL(PARTNER).host}`);
  } catch (e) {
    setPartnerState('error', `Cannot reach the shop backend at ${PARTNER} (${(e as Error).message}). Is web/demo/server.mjs running?`);
  } finally {
    polling = false;
  }
}

// ---- joining and the viewer ------------------------------------------------------------

/** The embed URL on this page's own origin when it names the same server by another loopback
 * name (127.0.0.1 vs localhost): the viewer must be same-origin for postMessage to be pinned. */
function sameOriginEmbed(embed: string): string {
  const u = new URL(embed, location.href);
  const here = new URL(location.href);
  if (u.origin !== here.origin && LOOPBACK.has(u.hostname) && LOOPBACK.has(here.hostname) && u.port === here.port && u.protocol === here.protocol) {
    u.host = here.host;
  }
  return u.toString();
}

async function join(id: string, code: string, name: string): Promise<void> {
  ui.codeError.hidden = true;
  try {
    const r = await partner<{ embed_url: string }>(`/partner/sessions/${encodeURIComponent(id)}/join`, { method: 'POST' });
    const url = sameOriginEmbed(r.embed_url);
    viewerOrigin = new URL(url).origin;
    if (viewerOrigin !== location.origin) console.warn('console: the viewer is on', viewerOrigin, 'not this origin: its status events will be ignored');
    current = { id, code, name };
    ui.visitor.textContent = name || 'Anonymous visitor';
    ui.code.textContent = `Code ${formatCode(code)}`;
    showStatus({ state: 'waiting', control: 'none', visitor: 'disconnected' }, true);
    ui.welcome.hidden = true;
    ui.view.hidden = false;
    ui.frame.src = url;
    for (const li of rows.values()) li.classList.toggle('current', li.dataset.sessionId === id);
    void poll();
  } catch (e) {
    showCodeError(`Could not join: ${(e as Error).message}`);
  }
}

function leave(): void {
  current = null;
  ui.frame.src = 'about:blank';
  ui.view.hidden = true;
  ui.welcome.hidden = false;
  void poll();
}

function send(action: 'request_control' | 'release_control' | 'end' | 'status'): void {
  ui.frame.contentWindow?.postMessage({ source: 'cb-console', action }, location.origin);
}

const STATE_TEXT: Record<string, string> = { waiting: 'Viewer: waiting for the page', active: 'Viewer: live', ended: 'Viewer: session ended' };
const CONTROL_TEXT: Record<string, string> = {
  none: 'Control: view only',
  pending: 'Control: asked the visitor…',
  granted: 'Control: granted',
  denied: 'Control: declined',
  revoked: 'Control: taken back',
};
const VISITOR_TEXT: Record<string, string> = { connected: 'Visitor: connected', disconnected: 'Visitor: not connected' };

function showStatus(s: { state: string; control: string; visitor: string }, initial = false): void {
  ui.state.dataset.value = initial ? '' : s.state;
  ui.state.textContent = initial ? 'Viewer: connecting…' : (STATE_TEXT[s.state] ?? `Viewer: ${s.state}`);
  ui.control.dataset.value = s.control;
  ui.control.textContent = CONTROL_TEXT[s.control] ?? `Control: ${s.control}`;
  ui.statusVisitor.dataset.value = initial ? '' : s.visitor;
  ui.statusVisitor.textContent = initial ? 'Visitor: …' : (VISITOR_TEXT[s.visitor] ?? `Visitor: ${s.visitor}`);
  const ended = s.state === 'ended';
  ui.requestControl.hidden = s.control === 'granted';
  ui.requestControl.disabled = ended || s.control === 'pending';
  ui.releaseControl.hidden = s.control !== 'granted' || ended;
  ui.end.disabled = ended;
}

window.addEventListener('message', (ev: MessageEvent) => {
  if (ev.origin !== location.origin || ev.origin !== viewerOrigin) return; // only our own viewer
  if (ev.source !== ui.frame.contentWindow) return;
  const d = ev.data as Partial<ViewerStatus> | null;
  if (!d || typeof d !== 'object' || d.source !== 'cb-viewer' || d.type !== 'status') return;
  if (typeof d.state !== 'string' || typeof d.control !== 'string' || typeof d.visitor !== 'string') return;
  showStatus({ state: d.state, control: d.control, visitor: d.visitor });
  document.documentElement.dataset.viewerState = d.state;
});

ui.frame.addEventListener('load', () => {
  if (current) send('status'); // ask for the current status (the viewer may have posted before we listened)
});
ui.requestControl.addEventListener('click', () => send('request_control'));
ui.releaseControl.addEventListener('click', () => send('release_control'));
ui.end.addEventListener('click', () => send('end'));
ui.leave.addEventListener('click', leave);

// ---- join by code ----------------------------------------------------------------------

function showCodeError(text: string): void {
  ui.codeError.textContent = text;
  ui.codeError.hidden = false;
}

ui.codeForm.addEventListener('submit', (e) => {
  e.preventDefault();
  const code = ui.codeInput.value.replace(/\D/g, '');
  if (code.length !== 6) {
    showCodeError('A join code has 6 digits.');
    return;
  }
  ui.codeError.hidden = true;
  partner<SessionSummary>(`/partner/sessions/by_code/${code}`)
    .then((s) => {
      if (s.status === 'ended') throw new Error('that session has ended');
      ui.codeInput.value = '';
      return join(s.id, s.join_code, s.visitor.name ?? '');
    })
    .catch((err: Error) => showCodeError(/not found|404|No such/i.test(err.message) ? `No live session has the code ${formatCode(code)}.` : `Could not join: ${err.message}`));
});

void poll();
setInterval(() => {
  if (document.visibilityState === 'visible' || !current) void poll();
}, POLL_MS);
