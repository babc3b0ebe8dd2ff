// Direct SQL for the tests that must look at what the server stored (secrets at rest, rows the
// relay writes). Uses psql against $DATABASE_URL (scripts/test.sh exports it); tests that need it
// are skipped, saying so, when it is not set.

import { execFile } from 'node:child_process';

export const DATABASE_URL = process.env.DATABASE_URL || '';

/** sql(text, ...params) -> rows as arrays of strings (psql -At, unit separator between fields).
 * Parameters are bound with psql variables (:'p1', :'p2'...), never pasted into the text. */
export function sql(text, ...params) {
  if (!DATABASE_URL) throw new Error('DATABASE_URL is not set');
  const args = [DATABASE_URL, '-X', '-At', '-v', 'ON_ERROR_STOP=1', '-F', '\x1f'];
  params.forEach((p, i) => args.push('-v', `p${i + 1}=${p}`));
  return new Promise((resolve, reject) => {
    const child = execFile('psql', args, { timeout: 30_000, maxBuffer: 64 << 20 }, (err, stdout, stderr) => {
      if (err) {
        err.message += `\nstderr: ${stderr}`;
        reject(err);
        return;
      }
      resolve(stdout.split('\n').filter((l) => l !== '').map((l) => l.split('\x1f')));
    });
    child.stdin.end(text);
  });
}
