// Browser-side benchmark (not a test): the visitor SDK and the viewer in Debian's chromium
// against a running cobrowsed (scripts/bench-web.sh starts one). Prints:
//   size      the SDK's gzipped size, against rrweb's own recorder (the baseline it builds on)
//   cpu       main-thread time the SDK adds on a 5,000-node page during 1,000 mutations, against
//             the same page without the SDK, in the same run
//   latency   visitor-to-viewer time of a DOM change, browser to browser, p50/p95, against the
//             relay alone (Node clients, same machine, same run)
//   memory    the viewer's JS heap over 50,000 events with a snapshot every 10,000
// Usage: node bench/web/bench.mjs [--quick]   (env: COBROWSE_BASE_URL, COBROWSE_ADMIN_TOKEN,
//   COBROWSE_WEB_ROOT; BENCH_CPU_RUNS: runs per variant of the main-thread figure, default 7)
import { readFileSync, statSync } from 'node:fs';
import { createServer } from 'node:http';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { gzipSync } from 'node:zlib';

const here = dirname(fileURLToPath(import.meta.url));
const ROOT = join(here, '..', '..');
const require = createRequire(join(ROOT, 'tests', 'package.json'));
const { chromium } = require('playwright-core');
const WebSocket = require('ws');
const esbuild = createRequire(join(ROOT, 'web', 'package.json'))('esbuild');

const API = process.env.COBROWSE_BASE_URL.replace(/\/+$/, '');
const ADMIN = process.env.COBROWSE_ADMIN_TOKEN;
const WEB = process.env.COBROWSE_WEB_ROOT;
const QUICK = process.argv.includes('--quick');
const say = (m) => process.stderr.write(`\x1b[1m==>\x1b[0m ${m}\n`);

async function call(method, path, body, tenant) {
  const headers = { Authorization: `Bearer ${ADMIN}`, 'Content-Type': 'application/json' };
  if (tenant) headers['Cobrowse-Tenant'] = tenant;
  const r = await fetch(API + path, { method, headers, body: body ? JSON.stringify(body) : undefined });
  const j = await r.json();
  if (!r.ok) throw new Error(`${method} ${path}: ${r.status} ${JSON.stringify(j)}`);
  return j;
}

// ---- the bench site: a 5,000-node page, on its own origin --------------------------------
// variant: 'plain' (no script), 'rrweb' (rrweb's recorder alone, events dropped: the floor any
// rrweb-based SDK starts from), 'sdk' (ours, recording and streaming).
const PAGE = (variant, key) => `<!doctype html><html><head><meta charset="utf-8"><title>bench</title>
<style>.cell{font:10px monospace}.hot{color:#c00}</style>
${variant === 'sdk' ? `<script src="${API}/sdk/v1/cobrowse.js"></script><script>Cobrowse.init({key:${JSON.stringify(key)},askBeforeViewing:false})</script>` : ''}
${variant === 'rrweb' ? '<script src="/rrweb-alone.js"></script>' : ''}
</head><body><div id="stamp">0</div><div id="grid"></div><script>
const grid = document.getElementById('grid');
for (let r = 0; r < 250; r++) { const row = document.createElement('div'); for (let c = 0; c < 19; c++) { const d = document.createElement('div'); d.className = 'cell'; d.textContent = r * 19 + c; row.append(d); } grid.append(row); }
window.nodeCount = () => document.getElementsByTagName('*').length;
// n mutations, one per task, interval ms apart (a live page, not a tight loop).
window.runMutations = (n, interval) => new Promise((done) => {
  const cells = document.querySelectorAll('.cell'); let i = 0;
  const t = setInterval(() => { const el = cells[(i * 7919) % cells.length]; el.textContent = 'v' + i; el.classList.toggle('hot'); if (++i >= n) { clearInterval(t); done(); } }, interval);
});
// n events as fast as the page can, one per task (MessageChannel: no timer clamping).
window.burst = (n) => new Promise((done) => {
  const cells = document.querySelectorAll('.cell'); const ch = new MessageChannel(); let i = 0;
  ch.port1.onmessage = () => { const el = cells[i % cells.length]; el.textContent = 'b' + i; if (++i >= n) done(); else ch.port2.postMessage(0); };
  ch.port2.postMessage(0);
});
</script></body></html>`;

// rrweb's recorder with the SDK's recording options, emitting into nothing, behind the same
// window.Cobrowse calls the runs make.
const RRWEB_ALONE = (
  await esbuild.build({
    stdin: {
      contents: `import { record } from '@rrweb/record';
        window.Cobrowse = { async start() { record({ emit() {}, maskAllInputs: true, recordCanvas: false,
          sampling: { mousemove: 50, scroll: 100, media: 800 } }); return {}; },
          _stats() { return { framesSent: 1, pendingFrames: 0 }; }, end() {} };`,
      resolveDir: join(ROOT, 'web'),
    },
    bundle: true,
    minify: true,
    format: 'iife',
    write: false,
  })
).outputFiles[0].text;

async function site(key) {
  const server = createServer((req, res) => {
    if (req.url === '/rrweb-alone.js') {
      res.setHeader('Content-Type', 'text/javascript');
      res.end(RRWEB_ALONE);
      return;
    }
    res.setHeader('Content-Type', 'text/html; charset=utf-8');
    res.end(PAGE(req.url.startsWith('/plain') ? 'plain' : req.url.startsWith('/rrweb') ? 'rrweb' : 'sdk', key));
  });
  await new Promise((r) => server.listen(0, '127.0.0.1', r));
  return { origin: `http://127.0.0.1:${server.address().port}`, close: () => server.close() };
}

const pct = (a, p) => {
  const s = [...a].sort((x, y) => x - y);
  return s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))];
};
const median = (a) => pct(a, 50);

// ---- size ----------------------------------------------------------------------------------
function sizes() {
  const sdk = readFileSync(join(WEB, 'sdk/v1/cobrowse.js'));
  const rrweb = readFileSync(join(ROOT, 'web/node_modules/@rrweb/record/dist/record.umd.min.cjs'));
  const viewer = statSync(join(WEB, 'assets')) && readFileSync(join(WEB, 'viewer/index.html'), 'utf8').match(/\/assets\/viewer-[A-Z0-9]+\.js/)[0];
  const vjs = readFileSync(join(WEB, viewer));
  return { sdk: gzipSync(sdk, { level: 9 }).length, rrweb: gzipSync(rrweb, { level: 9 }).length, viewer: gzipSync(vjs, { level: 9 }).length };
}

// ---- main-thread time ----------------------------------------------------------------------
async function taskSeconds(page) {
  const cdp = await page.context().newCDPSession(page);
  await cdp.send('Performance.enable');
  return async () => (await cdp.send('Performance.getMetrics')).metrics.find((m) => m.name === 'TaskDuration').value;
}

const SETTLE_MS = 500; // > the SDK's batch window (50 ms) + the relay's ack delay (200 ms)

async function cpuRun(browser, url, started, mutations, interval) {
  const ctx = await browser.newContext({ viewport: { width: 1280, height: 800 } });
  const page = await ctx.newPage();
  await page.goto(url);
  if (started) {
    await page.evaluate(() => window.Cobrowse.start());
    await page.waitForFunction(() => { const s = window.Cobrowse._stats(); return s && s.framesSent >= 1 && s.pendingFrames === 0; }, null, { timeout: 20000 });
  }
  const nodes = await page.evaluate(() => window.nodeCount());
  const busy = await taskSeconds(page);
  await page.waitForTimeout(300);
  // The same window for every variant: the mutations, then SETTLE_MS in which the SDK sends its
  // last frame and gets its ack. Waiting for the SDK with waitForFunction inside the window would
  // count the harness's own polling (a task per animation frame) as the SDK's.
  const t0 = await busy();
  const w0 = Date.now();
  await page.evaluate(([n, i, settle]) => window.runMutations(n, i).then(() => new Promise((r) => setTimeout(r, settle))), [mutations, interval, SETTLE_MS]);
  const t1 = await busy();
  const wall = (Date.now() - w0) / 1000;
  // Frames still unacknowledged at the end of the window (their ack is due within the relay's
  // 200 ms delay): counted and printed, then waited for outside the window.
  let pendingAtEnd = 0;
  if (started) {
    pendingAtEnd = await page.evaluate(() => window.Cobrowse._stats().pendingFrames);
    await page.waitForFunction(() => window.Cobrowse._stats().pendingFrames === 0, null, { timeout: 20000 });
    await page.evaluate(() => window.Cobrowse.end());
  }
  await ctx.close();
  return { busy: t1 - t0, wall, nodes, pendingAtEnd };
}

// ---- latency -------------------------------------------------------------------------------
async function browserLatency(browser, tenant, url, samples) {
  const vctx = await browser.newContext();
  const visitor = await vctx.newPage();
  await visitor.goto(url);
  const { sessionId } = await visitor.evaluate(() => window.Cobrowse.start());
  const tok = await call('POST', `/v1/sessions/${sessionId}/agent_tokens`, { agent: { id: 'bench', name: 'Bench' } }, tenant);
  const actx = await browser.newContext({ viewport: { width: 1400, height: 900 } });
  const viewer = await actx.newPage();
  await viewer.goto(tok.embed_url);
  await viewer.waitForFunction(() => window.__cbViewer?.replayDocument()?.getElementById('stamp'), null, { timeout: 20000 });
  await viewer.evaluate(() => {
    window.__lat = [];
    const doc = window.__cbViewer.replayDocument();
    new MutationObserver(() => {
      const v = Number(doc.getElementById('stamp')?.textContent);
      if (v > 0) window.__lat.push(Date.now() - v);
    }).observe(doc.getElementById('stamp'), { childList: true, characterData: true, subtree: true });
  });
  for (let i = 0; i < samples; i++) {
    await visitor.evaluate(() => (document.getElementById('stamp').textContent = String(Date.now())));
    await visitor.waitForTimeout(50);
  }
  await viewer.waitForTimeout(500);
  const lat = await viewer.evaluate(() => window.__lat);
  await visitor.evaluate(() => window.Cobrowse.end());
  await vctx.close();
  await actx.close();
  return lat;
}

async function relayLatency(tenant, samples) {
  const s = await call('POST', '/v1/sessions', {}, tenant);
  const a = await call('POST', `/v1/sessions/${s.id}/agent_tokens`, { agent: { id: 'bench-raw' } }, tenant);
  const open = (token, proto) => new Promise((res, rej) => {
    const u = new URL(s.relay_url);
    u.searchParams.set('access_token', token);
    const ws = new WebSocket(u, proto);
    ws.once('open', () => res(ws));
    ws.once('error', rej);
  });
  const v = await open(s.visitor_token, 'cobrowse.visitor.v1');
  const ag = await open(a.token, 'cobrowse.v1');
  const lat = [];
  ag.on('message', (d, bin) => {
    if (bin && d[1] === 2) lat.push(Date.now() - Number(JSON.parse(d.subarray(16).toString())[0].t));
  });
  const frame = (kind, seq, payload) => {
    const h = Buffer.alloc(16);
    h[0] = 1;
    h[1] = kind;
    h.writeBigUInt64BE(BigInt(seq), 8);
    return Buffer.concat([h, Buffer.from(JSON.stringify(payload))]);
  };
  v.send(frame(1, 1, [{ type: 4 }]));
  for (let i = 0; i < samples; i++) {
    v.send(frame(2, i + 2, [{ t: Date.now() }]));
    await new Promise((r) => setTimeout(r, 50));
  }
  await new Promise((r) => setTimeout(r, 300));
  v.close();
  ag.close();
  await call('POST', `/v1/sessions/${s.id}/end`, {}, tenant);
  return lat;
}

// ---- viewer memory -------------------------------------------------------------------------
async function viewerMemory(browser, tenant, url, total, every) {
  const vctx = await browser.newContext();
  const visitor = await vctx.newPage();
  await visitor.goto(url);
  const { sessionId } = await visitor.evaluate(() => window.Cobrowse.start());
  const tok = await call('POST', `/v1/sessions/${sessionId}/agent_tokens`, { agent: { id: 'bench-mem' } }, tenant);
  const actx = await browser.newContext({ viewport: { width: 1400, height: 900 } });
  const viewer = await actx.newPage();
  await viewer.goto(tok.embed_url);
  await viewer.waitForFunction(() => window.__cbViewer?.replayDocument()?.getElementById('grid'), null, { timeout: 20000 });
  const cdp = await actx.newCDPSession(viewer);
  const heap = async () => {
    await cdp.send('HeapProfiler.collectGarbage');
    return (await cdp.send('Runtime.getHeapUsage')).usedSize;
  };
  const rows = [];
  const settle = async () => {
    await visitor.waitForFunction(() => window.Cobrowse._stats().pendingFrames === 0, null, { timeout: 60000 });
    const seq = await visitor.evaluate(() => window.Cobrowse._stats().nextSeq - 1);
    await viewer.waitForFunction((s) => window.__cbViewer.state().lastSeq >= s, seq, { timeout: 60000 });
    await viewer.waitForTimeout(300);
  };
  await settle();
  rows.push({ events: 0, phase: 'start', heap: await heap(), held: (await viewer.evaluate(() => window.__cbViewer.state())).eventsHeld });
  for (let done = 0; done < total; done += every) {
    await visitor.evaluate((n) => window.burst(n), every);
    await settle();
    const before = await viewer.evaluate(() => window.__cbViewer.state());
    rows.push({ events: done + every, phase: 'before snapshot', heap: await heap(), held: before.eventsHeld });
    // A single-page-app navigation: the SDK sends a fresh snapshot.
    await visitor.evaluate((k) => history.pushState({}, '', `?page=${k}`), done);
    await viewer.waitForFunction((n) => window.__cbViewer.state().replayersCreated > n, before.replayersCreated, { timeout: 20000 });
    await settle();
    rows.push({ events: done + every, phase: 'after snapshot', heap: await heap(), held: (await viewer.evaluate(() => window.__cbViewer.state())).eventsHeld });
    say(`memory: ${done + every} events`);
  }
  await visitor.evaluate(() => window.Cobrowse.end());
  await vctx.close();
  await actx.close();
  return rows;
}

// ---- main ----------------------------------------------------------------------------------
const ten = await call('POST', '/v1/tenants', {
  name: `bench-web ${Date.now()}`,
  limits: { concurrent_sessions: 1000, sessions_per_minute: 100000, frames_per_second: 100000, bytes_per_second: 1073741824, agents_per_session: 10, api_requests_per_second: 100000 },
  permissions: { remote_control: 'ask' },
});
const s = await site('');
await call('PATCH', `/v1/tenants/${ten.id}`, { allowed_origins: [s.origin] });
const pk = await call('POST', '/v1/api_keys', { type: 'publishable', name: 'bench' }, ten.id);
s.close();
const bench = await site(pk.secret);
await call('PATCH', `/v1/tenants/${ten.id}`, { allowed_origins: [bench.origin] });
const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM_PATH ?? '/usr/bin/chromium',
  args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--disable-background-timer-throttling', '--disable-renderer-backgrounding', '--disable-backgrounding-occluded-windows', '--enable-precise-memory-info'],
});

const out = [];
const line = (s = '') => out.push(s);
try {
  const sz = sizes();
  const runs = Number(process.env.BENCH_CPU_RUNS) || (QUICK ? 1 : 7);
  say(`cpu: 1,000 mutations on a 5,000-node page: without any script, with rrweb alone, with the SDK (${runs} runs each, alternating)`);
  const base = [];
  const rr = [];
  const sdk = [];
  for (let i = 0; i < runs; i++) {
    base.push(await cpuRun(browser, `${bench.origin}/plain`, false, 1000, 5));
    rr.push(await cpuRun(browser, `${bench.origin}/rrweb`, true, 1000, 5));
    sdk.push(await cpuRun(browser, `${bench.origin}/`, true, 1000, 5));
  }
  const bBusy = median(base.map((r) => r.busy));
  const rBusy = median(rr.map((r) => r.busy));
  const sBusy = median(sdk.map((r) => r.busy));
  const wall = median(sdk.map((r) => r.wall));
  const added = sBusy - bBusy;
  const addedShare = (added / wall) * 100;

  say('latency: visitor to viewer, 200 DOM changes 50 ms apart; the relay alone with Node clients');
  const n = QUICK ? 60 : 200;
  const lb = await browserLatency(browser, ten.id, `${bench.origin}/`, n);
  const lr = await relayLatency(ten.id, n);

  const total = QUICK ? 10000 : 50000;
  say(`memory: the viewer's heap over ${total} events, a snapshot every ${total / 5}`);
  const mem = await viewerMemory(browser, ten.id, `${bench.origin}/`, total, total / 5);

  const kb = (b) => `${(b / 1024).toFixed(1)} KB`;
  line(`\nBrowser side on ${(await import('node:os')).cpus().length} cores (chromium ${browser.version()}, loopback)`);
  line(`\nsize (gzip -9)`);
  line(`  SDK /sdk/v1/cobrowse.js      ${kb(sz.sdk).padStart(9)}   target <= 60 KB: ${sz.sdk <= 60 * 1024 ? 'met' : 'NOT met'}`);
  line(`  baseline: rrweb's recorder   ${kb(sz.rrweb).padStart(9)}   (ours adds ${kb(sz.sdk - sz.rrweb)})`);
  line(`  viewer script (not a target) ${kb(sz.viewer).padStart(9)}`);
  line(`\nmain thread, ${sdk[0].nodes}-node page, 1,000 mutations 5 ms apart + ${SETTLE_MS} ms to settle (median of ${runs})`);
  line(`  without the SDK (baseline)   ${(bBusy * 1000).toFixed(0).padStart(6)} ms busy in ${wall.toFixed(2)} s`);
  line(`  rrweb's recorder alone       ${(rBusy * 1000).toFixed(0).padStart(6)} ms busy (+${((rBusy - bBusy) * 1000).toFixed(0)} ms: the floor of an rrweb-based SDK)`);
  line(`  with the SDK recording       ${(sBusy * 1000).toFixed(0).padStart(6)} ms busy`);
  line(`  added by the SDK             ${(added * 1000).toFixed(0).padStart(6)} ms = ${addedShare.toFixed(1)} % of the elapsed time   target < 5 %: ${addedShare < 5 ? 'met' : 'NOT met'}`);
  line(`                               (runs with frames still unacknowledged at the window's end: ${sdk.filter((r) => r.pendingAtEnd > 0).length} of ${runs})`);
  line(`                               (${((added / bBusy) * 100).toFixed(0)} % on top of the page's own main-thread work)`);
  line(`\nlatency of a change, ${lb.length} samples          p50       p95`);
  line(`  visitor page -> viewer page ${String(median(lb)).padStart(6)} ms ${String(pct(lb, 95)).padStart(6)} ms   target p95 < 50 ms: ${pct(lb, 95) < 50 ? 'met' : 'NOT met'}`);
  line(`  baseline: relay alone (Node) ${String(median(lr)).padStart(5)} ms ${String(pct(lr, 95)).padStart(6)} ms`);
  line(`\nviewer heap over ${total} events (after a forced GC)`);
  for (const r of mem) line(`  ${String(r.events).padStart(6)} events  ${r.phase.padEnd(16)} ${(r.heap / 1048576).toFixed(1).padStart(6)} MiB  ${String(r.held).padStart(6)} events held`);
  const after = mem.filter((r) => r.phase === 'after snapshot').map((r) => r.heap);
  const growth = (after[after.length - 1] - after[0]) / 1048576;
  line(`  after-snapshot heap from the first to the last: ${growth >= 0 ? '+' : ''}${growth.toFixed(1)} MiB   target flat (within 2 MiB): ${Math.abs(growth) <= 2 ? 'met' : 'NOT met'}`);
} finally {
  await browser.close();
  bench.close();
}
console.log(out.join('\n'));
