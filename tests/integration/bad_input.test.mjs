// Hostile and malformed input on every route with a body, every list route's query
// parameters, path parameters and the auth headers. Each case asserts the documented status
// and code; every single response must be < 500 and, when it is an error, an RFC 9457
// problem+json with code, title, status and request_id. The last test checks the server is
// still up. See docs/rest-api.md, "Conventions" and "Error codes".

import { test, before } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import {
  api, ADMIN_TOKEN, HIGH_LIMITS, expectStatus, expectProblem, assertInvariants, uniq, mutateId,
  newReseller, newSubTenant, newKey, show,
} from './lib/client.mjs';

const tag = randomBytes(4).toString('hex');

/** api() plus the invariants every response must satisfy. */
async function call(method, path, opts = {}) {
  let res;
  try {
    res = await api(method, path, opts);
  } catch (e) {
    e.message = `${method} ${path}: ${e.message}`;
    throw e;
  }
  assertInvariants(res, `${method} ${path}`);
  return res;
}

/** setPath({}, 'a.b', v) -> {a: {b: v}}; copies the objects it walks through. */
function setPath(obj, path, value) {
  const out = structuredClone(obj);
  const parts = path.split('.');
  let o = out;
  for (const p of parts.slice(0, -1)) {
    if (typeof o[p] !== 'object' || o[p] === null || Array.isArray(o[p])) o[p] = {};
    o = o[p];
  }
  o[parts.at(-1)] = value;
  return out;
}

/** JSON text of setPath(obj, path, <literal>), with the literal inserted verbatim. */
function withLiteral(obj, path, literal) {
  const marker = `__LITERAL_${tag}__`;
  return JSON.stringify(setPath(obj, path, marker)).replace(`"${marker}"`, literal);
}

const F = {};

before(async () => {
  F.R = await newReseller();
  F.rk = F.R.secret;
  F.S = await newSubTenant(F.rk);
  F.sk = F.S.secret;
  F.session = expectStatus(await api('POST', '/v1/sessions', { token: F.sk, body: {} }), 201, 'fixture session');
});

// ---------------------------------------------------------------------------------------------
// Routes with a body

const TENANT_FIELDS = [
  ['name', [123, true, {}, []]],
  ['branding', ['x', 1, [], true]],
  ['branding.product_name', [1, {}, []]],
  ['branding.logo_url', [1, {}, false]],
  ['branding.primary_color', [1, []]],
  ['branding.accent_color', [1, {}]],
  ['branding.consent_text', [1, {}]],
  ['allowed_origins', ['https://x.example', {}, 1]],
  ['allowed_origins', [[1], [{}], [null]], /^allowed_origins/],
  ['masking', ['x', 1, []]],
  ['masking.selectors', ['.card', {}, 1]],
  ['masking.selectors', [[1], [{}]], /^masking\.selectors/],
  ['masking.mask_all_inputs', ['true', 1, {}]],
  ['permissions', ['ask', 1, []]],
  ['permissions.remote_control', ['maybe', 1, true, {}]],
  ['limits', [5, 'x', []]],
  ...Object.keys(HIGH_LIMITS).map((k) => [`limits.${k}`, ['10', true, {}, []]]),
];

const BODY_ROUTES = [
  {
    label: 'POST /v1/tenants', m: 'POST', path: () => '/v1/tenants', token: () => F.rk,
    valid: () => ({ name: uniq('bad-input') }), ok: 201,
    fields: TENANT_FIELDS,
    objects: ['branding', 'masking', 'permissions', 'limits'],
    utf8Field: 'name',
  },
  {
    label: 'PATCH /v1/tenants/{id}', m: 'PATCH', path: () => `/v1/tenants/${F.S.tenant.id}`, token: () => F.rk,
    valid: () => ({ branding: { product_name: 'Fine' } }), ok: 200,
    fields: TENANT_FIELDS,
    objects: ['branding', 'masking', 'permissions', 'limits'],
    utf8Field: 'branding.product_name',
  },
  {
    label: 'POST /v1/api_keys', m: 'POST', path: () => '/v1/api_keys', token: () => F.sk,
    valid: () => ({ type: 'secret', name: uniq('bad-input-key'), scopes: ['sessions:read'] }), ok: 201,
    fields: [
      ['type', ['bogus', 1, true, {}]],
      ['name', [1, {}, []]],
      ['scopes', ['sessions:read', {}, 1]],
      ['scopes', [[1], ['bogus:scope'], ['sessions:read', 'nope']], /^scopes/],
      ['expires_at', [12345, 'tomorrow', true, '2030-13-45T99:99:99Z']],
    ],
    objects: [],
    missing: [['type', { name: 'no type', scopes: ['sessions:read'] }]],
    utf8Field: 'name',
  },
  {
    label: 'POST /v1/sessions', m: 'POST', path: () => '/v1/sessions', token: () => F.sk,
    valid: () => ({ visitor: { external_id: 'bi-ok' } }), ok: 201,
    fields: [
      ['visitor', ['x', 1, [], true]],
      ['visitor.external_id', [1, {}, []]],
      ['visitor.name', [1, {}, false]],
      ['visitor.email', [1, {}]],
      ['visitor.custom', ['x', 1, []]],
      ['visitor.custom', [{ nested: { a: 1 } }, { list: [1, 2] }], /^visitor\.custom/],
      ['permissions', ['off', 1, []]],
      ['permissions.remote_control', ['on', 'yes', 1, true]],
      ['expires_in_seconds', ['3600', true, {}, []]],
    ],
    objects: ['visitor', 'permissions'],
    utf8Field: 'visitor.name',
  },
  {
    label: 'POST /v1/sessions/{id}/agent_tokens', m: 'POST', path: () => `/v1/sessions/${F.session.id}/agent_tokens`, token: () => F.sk,
    valid: () => ({ agent: { id: 'agent-1', name: 'Agent' } }), ok: 201,
    fields: [
      ['agent', ['x', 1, []]],
      ['agent.id', [1, {}, []]],
      ['agent.name', [1, {}, true]],
      ['permissions', ['ask', 1]],
      ['permissions.remote_control', ['maybe', 1, false]],
      ['ttl_seconds', ['600', true, {}]],
    ],
    objects: ['agent', 'permissions'],
    missing: [['agent', { ttl_seconds: 600 }], ['agent.id', { agent: { name: 'No Id' } }]],
    utf8Field: 'agent.name',
  },
];

const MALFORMED = [
  ['unquoted key', '{name: "x"}'],
  ['single quotes', "{'name': 'x'}"],
  ['trailing comma', '{"name": "x",}'],
  ['missing value', '{"name": }'],
  ['bare word', 'not json'],
  ['two objects', '{"name":"x"}{"name":"y"}'],
  ['trailing garbage', '{"name":"x"} x'],
  ['empty body', ''],
  ['whitespace only', '   \n'],
  ['NaN literal', '{"name": NaN}'],
  ['comment', '{"name": "x" /* c */}'],
  ['unterminated string', '{"name": "x}'],
  ['control character in string', '{"name": "a\u0001b"}'],
  ['bad escape', '{"name": "\\q"}'],
];
const NOT_OBJECTS = [
  ['empty array', '[]'],
  ['array of object', '[{"name":"x"}]'],
  ['string', '"x"'],
  ['number', '42'],
  ['null', 'null'],
  ['true', 'true'],
];
const BAD_UTF8 = [
  ['0xff byte', [0xff]],
  ['lone continuation byte', [0x80]],
  ['overlong slash', [0xc0, 0xaf]],
  ['UTF-16 surrogate', [0xed, 0xa0, 0x80]],
  ['truncated 3-byte sequence', [0xe2, 0x82]],
  ['code point above U+10FFFF', [0xf4, 0x90, 0x80, 0x80]],
];

for (const r of BODY_ROUTES) {
  const send = (opts) => call(r.m, r.path(), { token: r.token(), ...opts });

  test(`${r.label}: control, a valid body is accepted`, async () => {
    expectStatus(await send({ body: r.valid() }), r.ok);
    expectStatus(await send({ rawBody: JSON.stringify(r.valid()), headers: { 'content-type': 'application/json; charset=utf-8' } }), r.ok, 'with charset');
  });

  for (const [what, text] of MALFORMED) {
    test(`${r.label}: malformed JSON (${what}) -> 400 invalid_json`, async () => {
      expectProblem(await send({ rawBody: text }), 400, 'invalid_json');
    });
  }

  test(`${r.label}: truncated JSON -> 400 invalid_json`, async () => {
    const full = JSON.stringify(r.valid());
    for (const cut of [1, 2, Math.floor(full.length / 2), full.length - 1]) {
      expectProblem(await send({ rawBody: full.slice(0, cut) }), 400, 'invalid_json', undefined, `cut at ${cut} of ${full}`);
    }
  });

  for (const [what, text] of NOT_OBJECTS) {
    test(`${r.label}: JSON ${what} instead of an object -> 400 invalid_json`, async () => {
      expectProblem(await send({ rawBody: text }), 400, 'invalid_json');
    });
  }

  test(`${r.label}: 20000-deep nested arrays -> 400 invalid_json, no crash`, async () => {
    expectProblem(await send({ rawBody: '['.repeat(20000) + ']'.repeat(20000) }), 400, 'invalid_json');
  });

  // Past the parser's depth limit the body is refused as JSON, like the arrays above, before
  // any field is looked at (a shallow unknown field is 422 unknown_field, tested below).
  test(`${r.label}: 10000-deep nested objects -> 400 invalid_json, no crash`, async () => {
    expectProblem(await send({ rawBody: '{"a":'.repeat(10000) + '1' + '}'.repeat(10000) }), 400, 'invalid_json');
  });

  for (const [field, values, fieldMatch] of r.fields) {
    for (const v of values) {
      test(`${r.label}: ${field} = ${JSON.stringify(v)} -> 422 invalid_field`, async () => {
        const res = await send({ body: setPath(r.valid(), field, v) });
        expectProblem(res, 422, 'invalid_field', fieldMatch || field);
      });
    }
  }

  for (const [field, body] of r.missing || []) {
    test(`${r.label}: without required ${field} -> 422 missing_field`, async () => {
      expectProblem(await send({ body }), 422, 'missing_field', field);
    });
  }

  test(`${r.label}: unknown top-level field -> 422 unknown_field`, async () => {
    expectProblem(await send({ body: { ...r.valid(), bogus: 1 } }), 422, 'unknown_field', 'bogus');
    expectProblem(await send({ body: { ...r.valid(), Name: 'x' } }), 422, 'unknown_field', 'Name', 'field names are case-sensitive');
  });
  for (const obj of r.objects) {
    test(`${r.label}: unknown field ${obj}.bogus -> 422 unknown_field`, async () => {
      expectProblem(await send({ body: setPath(r.valid(), `${obj}.bogus`, 'x') }), 422, 'unknown_field', `${obj}.bogus`);
    });
  }

  test(`${r.label}: 1 MiB body -> 413 body_too_large`, async () => {
    const big = JSON.stringify(setPath(r.valid(), r.utf8Field, 'a'.repeat(1 << 20)));
    expectProblem(await send({ rawBody: big }), 413, 'body_too_large');
  });

  for (const [what, bytes] of BAD_UTF8) {
    test(`${r.label}: invalid UTF-8 (${what}) in ${r.utf8Field} -> 400 invalid_utf8`, async () => {
      const marker = `__UTF8_${tag}__`;
      const [pre, post] = JSON.stringify(setPath(r.valid(), r.utf8Field, `a${marker}b`)).split(marker);
      const raw = Buffer.concat([Buffer.from(pre), Buffer.from(bytes), Buffer.from(post)]);
      expectProblem(await send({ rawBody: raw }), 400, 'invalid_utf8');
    });
  }
  test(`${r.label}: invalid UTF-8 in an object key -> 400 invalid_utf8`, async () => {
    const raw = Buffer.concat([Buffer.from('{"'), Buffer.from([0xff, 0xfe]), Buffer.from('":1}')]);
    expectProblem(await send({ rawBody: raw }), 400, 'invalid_utf8');
  });
  // The bytes are valid UTF-8 (ASCII), but the escape names no Unicode character: the body is
  // not JSON text this API reads (docs/rest-api.md, "Error codes": invalid_json).
  test(`${r.label}: escaped lone surrogate \\ud800 in ${r.utf8Field} -> 400 invalid_json`, async () => {
    const text = withLiteral(r.valid(), r.utf8Field, '"a\\ud800b"');
    expectProblem(await send({ rawBody: text }), 400, 'invalid_json');
  });

  for (const [what, ct] of [['no Content-Type', null], ['text/plain', 'text/plain'], ['form encoding', 'application/x-www-form-urlencoded'], ['multipart', 'multipart/form-data; boundary=x']]) {
    test(`${r.label}: ${what} -> 415 unsupported_media_type`, async () => {
      const res = await send({ rawBody: JSON.stringify(r.valid()), headers: { 'content-type': ct } });
      expectProblem(res, 415, 'unsupported_media_type');
    });
  }
}

// ---------------------------------------------------------------------------------------------
// Numbers: negative, zero, fractional and huge values for every numeric field.

const BAD_NUMBERS = ['-1', '0', '1.5', '1e-7', '1e300', '9223372036854775808', '18446744073709551616', '-9223372036854775809'];
const NUMERIC = [
  ...Object.keys(HIGH_LIMITS).map((k) => ({
    label: 'POST /v1/tenants (admin)', m: 'POST', path: () => '/v1/tenants', token: () => ADMIN_TOKEN,
    valid: () => ({ name: uniq('num') }), field: `limits.${k}`,
  })),
  ...Object.keys(HIGH_LIMITS).map((k) => ({
    label: 'PATCH /v1/tenants/{id} (admin)', m: 'PATCH', path: () => `/v1/tenants/${F.R.tenant.id}`, token: () => ADMIN_TOKEN,
    valid: () => ({}), field: `limits.${k}`,
  })),
  ...Object.keys(HIGH_LIMITS).map((k) => ({
    label: 'POST /v1/tenants (reseller)', m: 'POST', path: () => '/v1/tenants', token: () => F.rk,
    valid: () => ({ name: uniq('num') }), field: `limits.${k}`,
  })),
  {
    label: 'POST /v1/sessions', m: 'POST', path: () => '/v1/sessions', token: () => F.sk,
    valid: () => ({}), field: 'expires_in_seconds',
  },
  {
    label: 'POST /v1/sessions/{id}/agent_tokens', m: 'POST', path: () => `/v1/sessions/${F.session.id}/agent_tokens`, token: () => F.sk,
    valid: () => ({ agent: { id: 'a', name: 'A' } }), field: 'ttl_seconds',
  },
];
for (const n of NUMERIC) {
  for (const lit of BAD_NUMBERS) {
    test(`${n.label}: ${n.field} = ${lit} -> 422 invalid_field`, async () => {
      const res = await call(n.m, n.path(), { token: n.token(), rawBody: withLiteral(n.valid(), n.field, lit) });
      expectProblem(res, 422, 'invalid_field', n.field);
    });
  }
}
test('control: the admin PATCH of limits with sane numbers works and nothing above changed them', async () => {
  const t = expectStatus(await call('GET', `/v1/tenants/${F.R.tenant.id}`, { token: ADMIN_TOKEN }), 200);
  assert.deepEqual(t.limits, { ...HIGH_LIMITS }, 'refused PATCHes left the limits alone');
  const p = expectStatus(await call('PATCH', `/v1/tenants/${F.R.tenant.id}`, { token: ADMIN_TOKEN, body: { limits: { agents_per_session: 9 } } }), 200);
  assert.equal(p.limits.agents_per_session, 9);
  expectStatus(await call('PATCH', `/v1/tenants/${F.R.tenant.id}`, { token: ADMIN_TOKEN, body: { limits: { agents_per_session: HIGH_LIMITS.agents_per_session } } }), 200);
});

// ---------------------------------------------------------------------------------------------
// Hostile strings are stored verbatim and read back identically.

const NASTY = [
  ['SQL quote', "'; DROP TABLE tenants;--"],
  ['SQL or', '" OR 1=1 --'],
  ['backslashes', 'C:\\path\\to\\file \\\\ \\" \\n \\x00'],
  ['emoji', '😀 👍🏽 👨‍👩‍👧 🇺🇳'],
  ['mixed scripts', 'Ünïcödé 中文 עברית العربية'],
  ['HTML', '<script>alert(1)</script>&amp;'],
  ['format strings', '%s %n %x %d {0} ${x} %%'],
  ['Postgres quoting', "$$ $1 E'\\x00' U&'\\0000' ::text"],
  ['LIKE wildcards', '%_\\%*?'],
  ['line separators', 'a\u2028b\u2029c\r\nd\te\u0007f'],
  ['noncharacters', '\ufffe\uffff\ufeff'],
];

for (const [what, v] of NASTY) {
  test(`hostile string (${what}) is stored verbatim in tenants, keys and sessions`, async () => {
    // Tenant name and a nested string.
    const name = `${v} ${tag}`;
    const t = expectStatus(await call('POST', '/v1/tenants', { token: F.rk, body: { name, branding: { consent_text: v } } }), 201, 'create tenant');
    assert.equal(t.name, name);
    const tg = expectStatus(await call('GET', `/v1/tenants/${t.id}`, { token: F.rk }), 200);
    assert.equal(tg.name, name, 'tenant name read back');
    assert.equal(tg.branding.consent_text, v, 'branding.consent_text read back');
    // Key name.
    const k = expectStatus(await call('POST', '/v1/api_keys', { token: F.rk, tenant: t.id, body: { type: 'secret', name: v, scopes: ['sessions:read', 'sessions:write'] } }), 201, 'create key');
    const kg = expectStatus(await call('GET', `/v1/api_keys/${k.id}`, { token: F.rk, tenant: t.id }), 200);
    assert.equal(kg.name, v, 'key name read back');
    // Session visitor fields, custom values and keys; filter by the hostile external_id.
    const visitor = { external_id: v, name: v, custom: { note: v, [v]: 'key' } };
    const ses = expectStatus(await call('POST', '/v1/sessions', { token: k.secret, body: { visitor } }), 201, 'create session');
    expectStatus(await call('POST', '/v1/sessions', { token: k.secret, body: { visitor: { external_id: `other-${tag}` } } }), 201);
    const sg = expectStatus(await call('GET', `/v1/sessions/${ses.id}`, { token: k.secret }), 200);
    assert.deepEqual(sg.visitor, { email: null, ...visitor }, 'visitor read back');
    const list = expectStatus(await call('GET', `/v1/sessions?external_id=${encodeURIComponent(v)}`, { token: k.secret }), 200);
    assert.deepEqual(list.data.map((x) => x.id), [ses.id], 'external_id filter matches exactly, no wildcard or injection');
  });
}

// A NUL cannot be stored in a PostgreSQL text column, so it is refused where it enters, with the
// field's dotted path, never truncated or turned into a 500.
test('NUL (\\u0000) in strings -> 422 invalid_field naming the field', async () => {
  const v = `a\u0000b ${tag}`;
  expectProblem(await call('POST', '/v1/tenants', { token: F.rk, body: { name: v } }), 422, 'invalid_field', 'name');
  expectProblem(await call('POST', '/v1/sessions', { token: F.sk, body: { visitor: { external_id: v } } }), 422, 'invalid_field', 'visitor.external_id');
  expectProblem(await call('POST', '/v1/sessions', { token: F.sk, body: { visitor: { custom: { note: v } } } }), 422, 'invalid_field', 'visitor.custom.note');
  expectProblem(await call('POST', '/v1/api_keys', { token: F.sk, body: { type: 'secret', name: v, scopes: ['sessions:read'] } }), 422, 'invalid_field', 'name');
});

// ---------------------------------------------------------------------------------------------
// Query parameters of list routes

const LIST_ROUTES = [
  ['/v1/tenants', () => F.rk],
  ['/v1/api_keys', () => F.sk],
  ['/v1/sessions', () => F.sk],
];
const BAD_LIMITS = ['0', '101', 'abc', '-1', '1.5', '1e2', '99999999999999999999', '%27%3B--'];
const BAD_CURSORS = ['abc', '%27%3B%20DROP%20TABLE%20tenants%3B--', 'x'.repeat(300), '%00', 'ten_%21%21'];

for (const [path, tok] of LIST_ROUTES) {
  test(`GET ${path}: control, limit=1 and limit=100 are accepted`, async () => {
    const a = expectStatus(await call('GET', `${path}?limit=1`, { token: tok() }), 200);
    assert.ok(a.data.length <= 1, 'limit=1 gives at most one item');
    expectStatus(await call('GET', `${path}?limit=100`, { token: tok() }), 200);
  });
  for (const v of BAD_LIMITS) {
    test(`GET ${path}?limit=${v} -> 400 invalid_parameter`, async () => {
      expectProblem(await call('GET', `${path}?limit=${v}`, { token: tok() }), 400, 'invalid_parameter', 'limit');
    });
  }
  for (const v of BAD_CURSORS) {
    test(`GET ${path}?starting_after=${v.slice(0, 40)} -> 400 invalid_parameter`, async () => {
      expectProblem(await call('GET', `${path}?starting_after=${v}`, { token: tok() }), 400, 'invalid_parameter', 'starting_after');
    });
  }
  test(`GET ${path}?limit=%FF -> 400 invalid_utf8`, async () => {
    expectProblem(await call('GET', `${path}?limit=%FF`, { token: tok() }), 400, 'invalid_utf8');
  });
}

for (const [param, v] of [
  ['status', 'bogus'], ['status', 'ENDED'], ['status', '%27%20OR%201%3D1'],
  ['created_after', 'yesterday'], ['created_after', '2024-13-45T00:00:00Z'], ['created_after', '%27%3B--'],
  ['created_before', 'tomorrow'], ['created_before', '2024-02-30T25:61:00Z'],
]) {
  test(`GET /v1/sessions?${param}=${v} -> 400 invalid_parameter`, async () => {
    expectProblem(await call('GET', `/v1/sessions?${param}=${v}`, { token: F.sk }), 400, 'invalid_parameter', param);
  });
}
test('GET /v1/sessions?external_id=%FF -> 400 invalid_utf8', async () => {
  expectProblem(await call('GET', '/v1/sessions?external_id=a%FFb', { token: F.sk }), 400, 'invalid_utf8');
  expectProblem(await call('GET', '/v1/sessions?external_id=%C0%AF', { token: F.sk }), 400, 'invalid_utf8', undefined, 'overlong');
});
test('GET /v1/sessions with SQL metacharacters in filters matches nothing and does not fail', async () => {
  for (const v of ["' OR '1'='1", '%', '_', '\\', '"; DROP TABLE sessions;--']) {
    const body = expectStatus(await call('GET', `/v1/sessions?external_id=${encodeURIComponent(v)}`, { token: F.sk }), 200, v);
    assert.deepEqual(body.data, [], `external_id=${v} must match nothing`);
  }
});

// ---------------------------------------------------------------------------------------------
// Path parameters

const PATH_ROUTES = [
  ['GET', '/v1/tenants/{x}', () => F.rk],
  ['PATCH', '/v1/tenants/{x}', () => F.rk, { branding: { product_name: 'x' } }],
  ['DELETE', '/v1/tenants/{x}', () => F.rk],
  ['POST', '/v1/tenants/{x}/suspend', () => F.rk],
  ['POST', '/v1/tenants/{x}/reactivate', () => F.rk],
  ['GET', '/v1/api_keys/{x}', () => F.sk],
  ['POST', '/v1/api_keys/{x}/revoke', () => F.sk],
  ['GET', '/v1/sessions/{x}', () => F.sk],
  ['POST', '/v1/sessions/{x}/end', () => F.sk],
  ['POST', '/v1/sessions/{x}/agent_tokens', () => F.sk, { agent: { id: 'a', name: 'A' } }],
];
for (const [m, p, tok, body] of PATH_ROUTES) {
  for (const bad of ['not-an-id', '%27%3B%20DROP%20TABLE%20tenants%3B--', '1', 'x'.repeat(300)]) {
    test(`${m} ${p} with id "${decodeURIComponent(bad).slice(0, 30)}" -> 400 invalid_parameter`, async () => {
      const res = await call(m, p.replace('{x}', bad), { token: tok(), body });
      expectProblem(res, 400, 'invalid_parameter');
      assert.equal(typeof res.body.field, 'string', 'field names the parameter');
    });
  }
  // "body or a parameter is not valid UTF-8" is invalid_utf8, path parameters included.
  test(`${m} ${p} with %FF in the id -> 400 invalid_utf8`, async () => {
    expectProblem(await call(m, p.replace('{x}', 'ten_%FF'), { token: tok(), body }), 400, 'invalid_utf8');
  });
}
test('well-formed unknown ids -> 404 not_found', async () => {
  expectProblem(await call('GET', `/v1/tenants/${mutateId(F.S.tenant.id)}`, { token: F.rk }), 404, 'not_found', undefined, 'tenant');
  expectProblem(await call('GET', `/v1/api_keys/${mutateId(F.S.key.id)}`, { token: F.sk }), 404, 'not_found', undefined, 'key');
  expectProblem(await call('GET', `/v1/sessions/${mutateId(F.session.id)}`, { token: F.sk }), 404, 'not_found', undefined, 'session');
  expectProblem(await call('POST', `/v1/sessions/${mutateId(F.session.id)}/end`, { token: F.sk }), 404, 'not_found', undefined, 'end');
});
for (const code of ['abc', '12345', '1234567', '12a456', '-12345', '%20123456']) {
  test(`GET /v1/sessions/by_code/${code} -> 400 invalid_parameter`, async () => {
    expectProblem(await call('GET', `/v1/sessions/by_code/${code}`, { token: F.sk }), 400, 'invalid_parameter');
  });
}
test('GET /v1/sessions/by_code/<unused 6 digits> -> 404 not_found', async () => {
  const own = expectStatus(await call('GET', '/v1/sessions?limit=100', { token: F.sk }), 200).data.map((x) => x.join_code);
  let code = '000000';
  while (own.includes(code)) code = String(Number(code) + 1).padStart(6, '0');
  expectProblem(await call('GET', `/v1/sessions/by_code/${code}`, { token: F.sk }), 404, 'not_found');
});

// ---------------------------------------------------------------------------------------------
// Cobrowse-Tenant and Authorization headers

for (const v of ['garbage', 'ten_', 'ten_!!!', "ten_' OR 1=1 --", 'ten_a b', '__SESSION__', '__KEY__']) {
  for (const [who, tok] of [['admin', () => ADMIN_TOKEN], ['reseller key', () => F.rk]]) {
    test(`${who} with Cobrowse-Tenant "${v}" -> 400 tenant_header_invalid`, async () => {
      const value = v === '__SESSION__' ? F.session.id : v === '__KEY__' ? F.S.key.id : v;
      expectProblem(await call('GET', '/v1/sessions', { token: tok(), tenant: value }), 400, 'tenant_header_invalid');
      expectProblem(await call('POST', '/v1/sessions', { token: tok(), tenant: value, body: {} }), 400, 'tenant_header_invalid', undefined, 'POST');
    });
  }
}

const randomToken = (prefix) => prefix + randomBytes(39).toString('base64url').slice(0, 52);
const AUTH_CASES = [
  ['no Authorization', () => null, 'missing_api_key'],
  ['Basic scheme', () => 'Basic dXNlcjpwYXNz', 'missing_api_key'],
  ['key without scheme', () => F.sk, 'missing_api_key'],
  ['Token scheme', () => `Token ${F.sk}`, 'missing_api_key'],
  ['Bearer garbage', () => 'Bearer garbage', 'invalid_api_key'],
  ['Bearer random sk_', () => `Bearer ${randomToken('sk_')}`, 'invalid_api_key'],
  ['Bearer random pk_', () => `Bearer ${randomToken('pk_')}`, 'invalid_api_key'],
  ['Bearer random adm_', () => `Bearer ${randomToken('adm_')}`, 'invalid_api_key'],
  ['Bearer key + extra char', () => `Bearer ${F.sk}x`, 'invalid_api_key'],
  ['Bearer key truncated', () => `Bearer ${F.sk.slice(0, -1)}`, 'invalid_api_key'],
  ['Bearer key with last char changed', () => `Bearer ${mutateId(F.sk)}`, 'invalid_api_key'],
  ['Bearer SQL', () => "Bearer ' OR 1=1 --", 'invalid_api_key'],
  ['Bearer 4 KiB token', () => `Bearer sk_${'a'.repeat(4096)}`, 'invalid_api_key'],
];
for (const [what, value, code] of AUTH_CASES) {
  for (const [m, p, body] of [['GET', '/v1/sessions'], ['POST', '/v1/sessions', {}], ['GET', '/v1/tenants']]) {
    test(`${what} on ${m} ${p} -> 401 ${code}`, async () => {
      const res = await call(m, p, { headers: { authorization: value() }, body });
      expectProblem(res, 401, code);
    });
  }
}
// Session-token routes: every bad Authorization above, and an API key, is 401 invalid_token.
for (const [what, value] of [...AUTH_CASES.map(([w, v]) => [w, v]), ['a valid secret key', () => `Bearer ${F.sk}`],
  ['Bearer JWT-shaped garbage', () => 'Bearer eyJhbGciOiJIUzI1NiJ9.e30.AAAA'], ['Bearer with an empty token', () => 'Bearer ']]) {
  for (const [m, p] of [['GET', '/v1/token/session'], ['POST', '/v1/token/session/end']]) {
    test(`${what} on ${m} ${p} -> 401 invalid_token`, async () => {
      const res = await call(m, p, { headers: { authorization: value() } });
      expectProblem(res, 401, 'invalid_token');
      assert.equal(res.headers.get('access-control-allow-origin'), '*', 'readable by the browser');
    });
  }
}
test('session-token routes: hostile query strings and bodies do not matter (token checked first)', async () => {
  const token = F.session.visitor_token;
  expectStatus(await call('GET', '/v1/token/session?x=%27%3B--&limit=abc', { token }), 200);
  const bad = await call('GET', '/v1/token/session?x=%FF', { token });
  expectProblem(bad, 400, 'invalid_utf8');
  assert.equal(bad.headers.get('access-control-allow-origin'), '*', '400 readable by the browser');
  const big = await call('POST', '/v1/token/session/end', { token, rawBody: 'x'.repeat(70000) });
  expectProblem(big, 413, 'body_too_large');
  assert.equal(big.headers.get('access-control-allow-origin'), '*', '413 readable by the browser');
  expectStatus(await call('GET', '/v1/token/session', { token }), 200, 'not ended by any of it');
});

// "Bearer " carries no key at all (HTTP trims the trailing space): missing, not invalid.
test('Bearer with an empty token -> 401 missing_api_key', async () => {
  for (const value of ['Bearer ', 'Bearer']) {
    expectProblem(await call('GET', '/v1/sessions', { headers: { authorization: value } }), 401, 'missing_api_key', undefined, JSON.stringify(value));
  }
});
test('control: the fixture key still works after all the bad input', async () => {
  expectStatus(await call('GET', '/v1/sessions', { token: F.sk }), 200);
  expectStatus(await call('GET', `/v1/tenants/${F.S.tenant.id}`, { token: F.rk }), 200);
});

// Must stay the last test of the file.
test('after all of the above, GET /healthz still answers 200', async () => {
  const res = await api('GET', '/healthz', { spec: false });
  assert.equal(res.status, 200, show(res));
  assert.ok(res.headers.get('x-request-id'), 'X-Request-Id');
});
