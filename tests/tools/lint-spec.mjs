#!/usr/bin/env node
// Lints openapi/openapi.yaml with Redocly (rules: redocly.yaml and .redocly.lint-ignore.yaml at
// the repo root) and fails on any error *or warning*: redocly itself exits 0 on warnings.
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import path from 'node:path';

const root = fileURLToPath(new URL('../../', import.meta.url));
const bin = path.join(root, 'tests/node_modules/.bin/redocly');
const args = ['lint', '--config', path.join(root, 'redocly.yaml'), 'openapi/openapi.yaml'];
const env = { ...process.env, REDOCLY_TELEMETRY: 'off' };

const run = (extra, stdio) =>
  spawnSync(bin, [...args, ...extra], { cwd: root, env, stdio, encoding: 'utf8' });

const json = run(['--format', 'json'], ['ignore', 'pipe', 'pipe']);
let totals;
try {
  totals = JSON.parse(json.stdout).totals;
} catch {
  process.stderr.write(json.stdout + json.stderr);
  console.error(`lint:spec: could not read redocly's JSON output (exit ${json.status})`);
  process.exit(2);
}
if (json.status !== 0 || totals.errors > 0 || totals.warnings > 0) {
  run([], 'inherit'); // show the problems with code frames
  console.error(`lint:spec: FAILED, ${totals.errors} errors, ${totals.warnings} warnings`);
  process.exit(1);
}
console.log(`lint:spec: openapi/openapi.yaml OK, 0 errors, 0 warnings (${totals.ignored} ignored by .redocly.lint-ignore.yaml)`);
