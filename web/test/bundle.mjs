// Loads a TypeScript module of web/ for node --test: bundled on the fly with esbuild.
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import * as esbuild from 'esbuild';

const web = join(dirname(fileURLToPath(import.meta.url)), '..');

export async function load(path) {
  const built = await esbuild.build({ entryPoints: [join(web, path)], bundle: true, format: 'esm', write: false, platform: 'neutral' });
  return import(`data:text/javascript;base64,${Buffer.from(built.outputFiles[0].text).toString('base64')}`);
}
