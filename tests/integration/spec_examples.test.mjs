// The spec's examples have the server's shape: the agent token example (embed_url included) has
// the same members as a real answer, and its embed_url is <public URL>/viewer/<tenant_id>#token=
// <the example's own token>, as the server builds it.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { parse } from 'yaml';
import { api, expectStatus, newReseller, newSession } from './lib/client.mjs';

const spec = parse(readFileSync(new URL('../../openapi/openapi.yaml', import.meta.url), 'utf8'));

test('the createAgentToken example has the server\'s members and embed_url shape', async () => {
  const op = spec.paths['/v1/sessions/{id}/agent_tokens'].post;
  const example = op.responses['201'].content['application/json'].examples.token.value;
  const r = await newReseller();
  const s = await newSession(r.secret);
  const real = expectStatus(await api('POST', `/v1/sessions/${s.id}/agent_tokens`,
    { token: r.secret, body: { agent: { id: 'a1', name: 'A' } } }), 201);
  assert.deepEqual(Object.keys(example).sort(), Object.keys(real).sort());
  const shape = (a) => {
    const u = new URL(a.embed_url);
    return { path: u.pathname.split('/').slice(0, 2).join('/'), token: u.hash.replace(/^#token=/, '') };
  };
  assert.deepEqual(shape(example), { path: '/viewer', token: example.token });
  assert.deepEqual(shape(real), { path: '/viewer', token: real.token });
  assert.match(new URL(example.embed_url).pathname, /^\/viewer\/ten_[0-9A-Z]{26}$/);
});
