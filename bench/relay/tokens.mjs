// Writes the tokens file of bench/relay/loadgen.c on stdout: one session a line,
// "session_id visitor_token agent_token1 agent_token2 ...".
//
//   node tokens.mjs rest API_URL SESSIONS AGENTS   (secret key in BENCH_KEY) sessions and agent
//                                                  tokens created through the REST API
//   node tokens.mjs fake SESSIONS AGENTS           unsigned look-alike JWTs, for the Node baseline
//                                                  alone (it reads sid and role, never verifies)
//
// REST calls run 16 at a time over keep-alive connections: 2,000 sessions with 5 agents each
// are 12,000 requests, a few seconds instead of a minute of curl processes.
const [mode, ...args] = process.argv.slice(2);

function fakeJwt(claims) {
  const b64 = (o) => Buffer.from(JSON.stringify(o)).toString('base64url');
  return `${b64({ alg: 'HS256', typ: 'JWT' })}.${b64(claims)}.${Buffer.from('not-signed').toString('base64url')}`;
}

async function post(api, path, body) {
  for (let attempt = 0; ; attempt++) {
    const res = await fetch(api + path, {
      method: 'POST',
      headers: { Authorization: `Bearer ${process.env.BENCH_KEY}`, 'Content-Type': 'application/json' },
      body: JSON.stringify(body),
    });
    const text = await res.text();
    if (res.status === 201 || res.status === 200) return JSON.parse(text);
    // the benchmark tenant's limits are high; a 429 here would be the node's own guard
    if (res.status === 429 && attempt < 10) {
      await new Promise((ok) => setTimeout(ok, 1000 * Number(res.headers.get('retry-after') || 1)));
      continue;
    }
    throw new Error(`POST ${path}: ${res.status} ${text}`);
  }
}

async function restLines(api, sessions, agents) {
  const lines = new Array(sessions);
  let next = 0;
  async function worker() {
    while (next < sessions) {
      const i = next++;
      const s = await post(api, '/v1/sessions', { visitor: { external_id: `bench-${i}` } });
      const tokens = [];
      for (let a = 1; a <= agents; a++) {
        const t = await post(api, `/v1/sessions/${s.id}/agent_tokens`, {
          agent: { id: `agent-${a}`, name: `Agent ${a}` },
          ttl_seconds: 86400,
        });
        tokens.push(t.token);
      }
      lines[i] = [s.id, s.visitor_token, ...tokens].join(' ');
    }
  }
  await Promise.all(Array.from({ length: 16 }, worker));
  return lines;
}

function fakeLines(sessions, agents) {
  const now = Math.floor(Date.now() / 1000);
  const lines = [];
  for (let i = 0; i < sessions; i++) {
    const sid = `ses_fake${String(i).padStart(8, '0')}`;
    const base = { iss: 'cobrowse', aud: 'cobrowse-relay', sid, tid: 'ten_fake', iat: now, nbf: now, exp: now + 86400 };
    const tokens = [fakeJwt({ ...base, sub: 'visitor', role: 'visitor' })];
    for (let a = 1; a <= agents; a++) tokens.push(fakeJwt({ ...base, sub: `agent-${a}`, role: 'agent' }));
    lines.push([sid, ...tokens].join(' '));
  }
  return lines;
}

let lines;
if (mode === 'rest' && args.length === 3) {
  lines = await restLines(args[0], Number(args[1]), Number(args[2]));
} else if (mode === 'fake' && args.length === 2) {
  lines = fakeLines(Number(args[0]), Number(args[1]));
} else {
  console.error('usage: node tokens.mjs rest API_URL SESSIONS AGENTS | fake SESSIONS AGENTS');
  process.exit(2);
}
process.stdout.write(lines.join('\n') + '\n');
