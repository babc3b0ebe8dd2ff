// The baseline of scripts/bench-relay.sh: a WebSocket room broadcast of the kind people usually
// write with Node.js and `ws`. It speaks just enough of docs/protocol.md for bench/relay/loadgen.c
// to drive it exactly as it drives our relay: the same upgrade (`?access_token=<JWT>`, subprotocol
// `cobrowse.v1` answered with `cobrowse.v1`), a `hello` for the visitor, coalesced `ack`s, and
// every binary message of a session's visitor sent to all of its agents.
//
// On purpose it has none of what the relay does besides: it does not verify the JWT (it only
// reads `sid` and `role` from its payload so that rooms match), keeps no history (so no resume),
// and has no limits and no backpressure (a slow agent's frames pile up in memory).
//
// Usage: node baseline.mjs PORT [HOST]
import { WebSocketServer } from 'ws';

const port = Number(process.argv[2] || 8090);
const host = process.argv[3] || '127.0.0.1';
const rooms = new Map(); // session id -> { visitor, agents: Set }

// The token as docs/protocol.md carries it (?access_token=, or a Bearer header), or as the older
// "cobrowse.token.<JWT>" subprotocol; only its payload is read.
function tokenOf(req) {
  const q = new URL(req.url, 'http://x').searchParams.get('access_token');
  if (q) return q;
  const auth = req.headers.authorization || '';
  if (auth.startsWith('Bearer ')) return auth.slice(7);
  const offered = (req.headers['sec-websocket-protocol'] || '').split(',').map((p) => p.trim());
  const sub = offered.find((p) => p.startsWith('cobrowse.token.'));
  return sub ? sub.slice('cobrowse.token.'.length) : null;
}

function claimsOf(req) {
  const token = tokenOf(req);
  if (!token) return null;
  try {
    const claims = JSON.parse(Buffer.from(token.split('.')[1], 'base64url').toString('utf8'));
    return typeof claims.sid === 'string' ? claims : null;
  } catch {
    return null;
  }
}

function room(sid) {
  let r = rooms.get(sid);
  if (!r) {
    r = { visitor: null, agents: new Set() };
    rooms.set(sid, r);
  }
  return r;
}

function dropIfEmpty(sid, r) {
  if (!r.visitor && r.agents.size === 0) rooms.delete(sid);
}

const wss = new WebSocketServer({
  host,
  port,
  path: '/v1/relay',
  clientTracking: false,
  perMessageDeflate: false,
  handleProtocols: (protocols) => (protocols.has('cobrowse.v1') ? 'cobrowse.v1' : false),
  verifyClient: ({ req }) => claimsOf(req) !== null,
});

wss.on('connection', (ws, req) => {
  const claims = claimsOf(req);
  const sid = claims.sid;
  const r = room(sid);
  ws.on('error', () => {});
  if (claims.role === 'agent') {
    r.agents.add(ws);
    ws.on('close', () => {
      r.agents.delete(ws);
      dropIfEmpty(sid, r);
    });
    return;
  }
  if (r.visitor) r.visitor.close(4002, 'replaced');
  r.visitor = ws;
  ws.send(JSON.stringify({ type: 'hello', have: 0, next_seq: 1 }));
  // Acks coalesced per turn of the event loop: one per batch of frames read, not one per frame.
  let lastSeq = 0;
  let ackPending = false;
  const sendAck = () => {
    ackPending = false;
    if (ws.readyState === ws.OPEN) ws.send(`{"type":"ack","seq":${lastSeq}}`);
  };
  ws.on('message', (data, isBinary) => {
    if (!isBinary || data.length < 16) return;
    for (const agent of r.agents) agent.send(data, { binary: true });
    lastSeq = Number(data.readBigUInt64BE(8));
    if (!ackPending) {
      ackPending = true;
      setImmediate(sendAck);
    }
  });
  ws.on('close', () => {
    if (r.visitor === ws) r.visitor = null;
    dropIfEmpty(sid, r);
  });
});

wss.on('listening', () => console.error(`baseline listening on ws://${host}:${port}/v1/relay`));
process.on('SIGTERM', () => process.exit(0));
process.on('SIGINT', () => process.exit(0));
