// Builds the browser code into OUTDIR (default ../build/web), the tree cobrowsed serves:
//   sdk/v1/cobrowse.js           the visitor SDK (stable URL: sites paste it in a script tag)
//   viewer/index.html            the agent viewer (embed_url), refers to hashed assets
//   demo/console/index.html      the demo agent console
//   assets/<name>-<hash>.js|css  content-hashed, served with long caching
// and a .gz beside every file (cobrowsed serves it to clients that accept gzip).
// Usage: node web/build.mjs [OUTDIR] [--dev] (--dev: no minification, inline source maps)
import * as esbuild from 'esbuild';
import { gzipSync } from 'node:zlib';
import { mkdirSync, readFileSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { basename, dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));
const args = process.argv.slice(2);
const dev = args.includes('--dev');
const out = resolve(args.find((a) => !a.startsWith('--')) ?? join(here, '..', 'build', 'web'));

const common = {
  bundle: true,
  minify: !dev,
  sourcemap: dev ? 'inline' : false,
  target: ['es2020', 'chrome100', 'firefox100', 'safari15'],
  legalComments: 'none',
  logLevel: 'warning',
  absWorkingDir: here,
};

rmSync(out, { recursive: true, force: true });
mkdirSync(out, { recursive: true });

// The SDK: one IIFE at a stable URL.
await esbuild.build({
  ...common,
  entryPoints: ['sdk/index.ts'],
  format: 'iife',
  outfile: join(out, 'sdk/v1/cobrowse.js'),
});

// Pages: their scripts and styles under content-hashed names, then the HTML that names them.
const pages = [
  { name: 'viewer', js: 'viewer/main.ts', css: 'viewer/viewer.css', html: 'viewer/index.html', to: 'viewer/index.html' },
  { name: 'console', js: 'demo/console/main.ts', css: 'demo/console/console.css', html: 'demo/console/index.html', to: 'demo/console/index.html' },
];
for (const p of pages) {
  const r = await esbuild.build({
    ...common,
    entryPoints: { [p.name]: p.js, [`${p.name}-style`]: p.css },
    format: 'iife',
    outdir: join(out, 'assets'),
    entryNames: '[name]-[hash]',
    metafile: true,
  });
  const files = Object.keys(r.metafile.outputs).map((f) => '/' + relative(out, resolve(here, f)));
  const js = files.find((f) => f.endsWith('.js'));
  const css = files.find((f) => f.endsWith('.css'));
  const html = readFileSync(join(here, p.html), 'utf8').replaceAll('{{js}}', js).replaceAll('{{css}}', css);
  mkdirSync(dirname(join(out, p.to)), { recursive: true });
  writeFileSync(join(out, p.to), html);
}

// Pre-compressed copies.
let total = 0;
const walk = (d) => readdirSync(d).flatMap((n) => (statSync(join(d, n)).isDirectory() ? walk(join(d, n)) : [join(d, n)]));
for (const f of walk(out)) {
  const body = readFileSync(f);
  const gz = gzipSync(body, { level: 9 });
  if (gz.length < body.length) writeFileSync(f + '.gz', gz);
  total += body.length;
  if (!dev) console.log(`  ${relative(out, f).padEnd(44)} ${String(body.length).padStart(8)} B  gzip ${String(gz.length).padStart(7)} B`);
}
console.log(`web build: ${out} (${(total / 1024).toFixed(0)} KiB)${dev ? ' [dev]' : ''}`);
void basename;
