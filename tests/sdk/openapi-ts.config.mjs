// @hey-api/openapi-ts settings: a typed fetch client for openapi/openapi.yaml, written to
// tests/sdk/generated (git-ignored). Run from tests/: npm run sdk:generate
import { fileURLToPath } from 'node:url';

const here = (p) => fileURLToPath(new URL(p, import.meta.url));

export default {
  input: here('../../openapi/openapi.yaml'),
  output: {
    path: here('./generated'),
    tsConfigPath: here('./tsconfig.json'),
    clean: true,
  },
  plugins: ['@hey-api/client-fetch', '@hey-api/typescript', '@hey-api/sdk'],
};
