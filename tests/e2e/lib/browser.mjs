// Browser helpers of the end-to-end tests: Debian's chromium driven by playwright-core, the
// WebSocket frames a page sent (decoded per docs/protocol.md), screenshots and a pixel diff.
//
//   const browser = await launch();          // one per test file; close it in after()
//   const ctx = await newContext(browser);   // a fresh profile per visitor / agent
//   const sent = captureSentFrames(page);    // before the page opens its socket
//   ... sent.binary -> [Buffer], sent.text -> [string]; decodeFrame(buf) -> {kind, flags, seq, events}

import { chromium } from 'playwright-core';
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { inflateRawSync } from 'node:zlib';
import { PNG } from 'pngjs';
import pixelmatch from 'pixelmatch';

const here = dirname(fileURLToPath(import.meta.url));

export const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';
export const CHROMIUM_ARGS = Object.freeze([
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
  // Timers of pages in background tabs and occluded windows keep running (two contexts at once).
  '--disable-background-timer-throttling',
  '--disable-renderer-backgrounding',
  '--disable-backgrounding-occluded-windows',
  '--font-render-hinting=none',
]);

/** Where failing tests leave screenshots (kept by scripts/test.sh with the run's logs). */
export const ARTIFACTS = resolve(process.env.COBROWSE_E2E_ARTIFACTS ?? join(here, '..', '..', '..', '.cobrowse', 'e2e-artifacts'));

/** Starts chromium. Each call is a separate browser process. */
export async function launch(opts = {}) {
  if (!existsSync(CHROMIUM)) throw new Error(`${CHROMIUM} not found: install the Debian package chromium (scripts/test.sh does)`);
  return chromium.launch({ executablePath: CHROMIUM, args: [...CHROMIUM_ARGS], headless: true, timeout: 60000, ...opts });
}

/** A fresh browser context (its own cookies and storage): one per visitor or agent. */
export async function newContext(browser, opts = {}) {
  const ctx = await browser.newContext({
    viewport: { width: 1280, height: 800 },
    deviceScaleFactor: 1,
    locale: 'en-US',
    timezoneId: 'UTC',
    reducedMotion: 'reduce',
    ...opts,
  });
  ctx.setDefaultTimeout(15000);
  ctx.setDefaultNavigationTimeout(20000);
  return ctx;
}

/**
 * Records what the page's WebSockets send: binary frames as Buffers (Playwright hands binary
 * payloads over as Buffer, text as string), per socket and all together. Call it before the page
 * opens its sockets (right after newPage()).
 */
export function captureSentFrames(page, { urlFilter = /\/v1\/relay/ } = {}) {
  const rec = { binary: [], text: [], sockets: [] };
  page.on('websocket', (ws) => {
    if (urlFilter && !urlFilter.test(ws.url())) return;
    const sock = { url: ws.url(), binary: [], text: [], closed: false };
    rec.sockets.push(sock);
    ws.on('framesent', ({ payload }) => {
      if (typeof payload === 'string') {
        sock.text.push(payload);
        rec.text.push(payload);
      } else {
        const buf = Buffer.from(payload);
        sock.binary.push(buf);
        rec.binary.push(buf);
      }
    });
    ws.on('close', () => (sock.closed = true));
  });
  /** Every binary frame sent so far, decoded. */
  rec.decoded = () => rec.binary.map(decodeFrame);
  /** Text messages sent so far, parsed as JSON where they are JSON. */
  rec.messages = () => rec.text.map((t) => {
    try {
      return JSON.parse(t);
    } catch {
      return t;
    }
  });
  /** Every byte the page sent, payloads decompressed, as one string (to search for secrets). */
  rec.allText = () => [...rec.decoded().map((f) => f.raw.toString('utf8')), ...rec.text].join('\n');
  return rec;
}

/** Records what the page's WebSockets received (the viewer's side). */
export function captureReceivedFrames(page, { urlFilter = /\/v1\/relay/ } = {}) {
  const rec = { binary: [], text: [] };
  page.on('websocket', (ws) => {
    if (urlFilter && !urlFilter.test(ws.url())) return;
    ws.on('framereceived', ({ payload }) => {
      if (typeof payload === 'string') rec.text.push(payload);
      else rec.binary.push(Buffer.from(payload));
    });
  });
  rec.decoded = () => rec.binary.map(decodeFrame);
  return rec;
}

export const FRAME_HEADER_LEN = 16;
export const KIND_SNAPSHOT = 1;
export const KIND_EVENT = 2;
export const FLAG_DEFLATE = 1;

/** The header fields of a data frame (docs/protocol.md), or throws when it is not a valid v1 frame. */
export function decodeHeader(buf) {
  if (buf.length < FRAME_HEADER_LEN) throw new Error(`frame of ${buf.length} bytes: shorter than the header`);
  const version = buf.readUInt8(0);
  const kind = buf.readUInt8(1);
  const flags = buf.readUInt16BE(2);
  const reserved = buf.readUInt32BE(4);
  const seq = buf.readBigUInt64BE(8);
  if (version !== 1) throw new Error(`frame version ${version}`);
  if (kind !== KIND_SNAPSHOT && kind !== KIND_EVENT) throw new Error(`frame kind ${kind}`);
  if (flags & ~FLAG_DEFLATE) throw new Error(`reserved flag bits set: ${flags}`);
  if (reserved !== 0) throw new Error('reserved bytes not zero');
  if (seq === 0n || seq > BigInt(Number.MAX_SAFE_INTEGER)) throw new Error(`bad seq ${seq}`);
  return { kind, flags, seq: Number(seq) };
}

/** {kind, flags, seq, raw (the payload, decompressed), events (rrweb events)} of a data frame. */
export function decodeFrame(buf) {
  buf = Buffer.isBuffer(buf) ? buf : Buffer.from(buf);
  const h = decodeHeader(buf);
  const payload = buf.subarray(FRAME_HEADER_LEN);
  const raw = h.flags & FLAG_DEFLATE ? inflateRawSync(payload) : Buffer.from(payload);
  let events;
  try {
    events = JSON.parse(raw.toString('utf8'));
  } catch (e) {
    throw new Error(`frame seq ${h.seq}: payload is not JSON (${e.message})`);
  }
  if (!Array.isArray(events)) throw new Error(`frame seq ${h.seq}: payload is not a JSON array`);
  return { ...h, raw, events };
}

/** Waits until fn() returns a truthy value (polled, no fixed sleeps in tests); returns it. */
export async function waitFor(fn, { timeout = 15000, interval = 50, message = 'condition' } = {}) {
  const deadline = Date.now() + timeout;
  let last;
  for (;;) {
    try {
      const v = await fn();
      if (v) return v;
    } catch (e) {
      last = e;
    }
    if (Date.now() > deadline) throw new Error(`timed out after ${timeout} ms waiting for ${message}${last ? `: ${last.message}` : ''}`);
    await new Promise((r) => setTimeout(r, interval));
  }
}

// ---- screenshots and pixel comparison -----------------------------------------------------

/** A PNG screenshot (Buffer) of the page's viewport, or of one element with {locator}. */
export async function screenshot(page, { locator, fullPage = false, path } = {}) {
  const png = locator ? await page.locator(locator).screenshot({ animations: 'disabled' }) : await page.screenshot({ fullPage, animations: 'disabled' });
  if (path) saveArtifact(path, png);
  return png;
}

/** Writes a file under ARTIFACTS (test name prefixes keep them apart); returns its path. */
export function saveArtifact(name, data) {
  const p = join(ARTIFACTS, name);
  mkdirSync(dirname(p), { recursive: true });
  writeFileSync(p, data);
  return p;
}

export function readPng(buf) {
  return PNG.sync.read(Buffer.isBuffer(buf) ? buf : Buffer.from(buf));
}

/** Scales a decoded PNG to width x height (nearest neighbour), for pictures of different sizes. */
export function resizePng(img, width, height) {
  if (img.width === width && img.height === height) return img;
  const out = new PNG({ width, height });
  for (let y = 0; y < height; y++) {
    const sy = Math.min(img.height - 1, Math.floor((y * img.height) / height));
    for (let x = 0; x < width; x++) {
      const sx = Math.min(img.width - 1, Math.floor((x * img.width) / width));
      img.data.copy(out.data, (y * width + x) * 4, (sy * img.width + sx) * 4, (sy * img.width + sx) * 4 + 4);
    }
  }
  return out;
}

/**
 * Compares two PNG screenshots: {ratio, diffPixels, total, diffPng}. ratio is the fraction of
 * pixels that differ beyond pixelmatch's threshold (0.1 by default; anti-aliasing ignored). The
 * second picture is scaled to the first's size when they differ.
 */
export function pixelDiff(pngA, pngB, { threshold = 0.1, includeAA = false } = {}) {
  const a = readPng(pngA);
  const b = resizePng(readPng(pngB), a.width, a.height);
  const diff = new PNG({ width: a.width, height: a.height });
  const diffPixels = pixelmatch(a.data, b.data, diff.data, a.width, a.height, { threshold, includeAA });
  const total = a.width * a.height;
  return { ratio: diffPixels / total, diffPixels, total, width: a.width, height: a.height, diffPng: PNG.sync.write(diff) };
}
