// Checks real HTTP answers against openapi/openapi.yaml.
//
//   import { checkResponse, specRoutes } from './lib/spec.mjs';
//   checkResponse('GET', '/v1/tenants/ten_123?x=1', 200, body, res.headers.get('content-type'));
//
// checkResponse throws an Error saying what is wrong when the route, the status or the media type
// is not in the spec, or the body does not validate against the documented schema.
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { parse as parseYaml } from 'yaml';
import Ajv2020 from 'ajv/dist/2020.js';
import addFormats from 'ajv-formats';

export const REPO_ROOT = fileURLToPath(new URL('../../../', import.meta.url));
export const SPEC_PATH = fileURLToPath(new URL('../../../openapi/openapi.yaml', import.meta.url));

const METHODS = ['get', 'put', 'post', 'delete', 'options', 'head', 'patch', 'trace'];
const SPEC_ID = 'openapi.yaml';

let cache = null;

function load() {
  if (cache) return cache;
  const spec = parseYaml(readFileSync(SPEC_PATH, 'utf8'));
  const ajv = new Ajv2020({ strict: false, allErrors: true, validateSchema: false });
  addFormats(ajv);
  // The whole document is registered once, so `#/components/...` refs resolve inside it and a
  // schema anywhere in it can be compiled by JSON pointer.
  ajv.addSchema({ ...spec, $id: SPEC_ID });

  const routes = [];
  for (const [template, item] of Object.entries(spec.paths ?? {})) {
    const segments = template.split('/');
    const literal = segments.filter((s) => s && !s.startsWith('{')).length;
    const regex = new RegExp(
      '^' +
        segments
          .map((s) => (s.startsWith('{') && s.endsWith('}') ? '[^/]+' : escapeRegex(s)))
          .join('/') +
        '$',
    );
    for (const m of METHODS) {
      if (item[m]) routes.push({ method: m.toUpperCase(), path: template, regex, literal });
    }
  }
  cache = { spec, ajv, routes, validators: new Map() };
  return cache;
}

function escapeRegex(s) {
  return s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

function pointerEscape(s) {
  return String(s).replace(/~/g, '~0').replace(/\//g, '~1');
}

// Follows a local $ref; returns the target object and its JSON pointer.
function deref(spec, obj, pointer) {
  let seen = 0;
  while (obj && typeof obj === 'object' && typeof obj.$ref === 'string') {
    if (!obj.$ref.startsWith('#/')) throw new Error(`spec: only local $refs are supported, got ${obj.$ref}`);
    if (++seen > 20) throw new Error(`spec: $ref loop at ${obj.$ref}`);
    pointer = obj.$ref;
    obj = obj.$ref
      .slice(2)
      .split('/')
      .map((p) => p.replace(/~1/g, '/').replace(/~0/g, '~'))
      .reduce((o, k) => (o == null ? undefined : o[k]), spec);
    if (obj === undefined) throw new Error(`spec: unresolved $ref ${pointer}`);
  }
  return { obj, pointer };
}

/** All operations of the spec, as [{method: 'GET', path: '/v1/tenants/{id}'}], in spec order. */
export function specRoutes() {
  return load().routes.map(({ method, path }) => ({ method, path }));
}

/** The spec operation for a method and a concrete path (query string ignored), or null. */
export function findOperation(method, actualPath) {
  const { spec, routes } = load();
  const path = stripQuery(actualPath);
  const m = method.toUpperCase();
  const match = routes
    .filter((r) => r.method === m && r.regex.test(path))
    .sort((a, b) => b.literal - a.literal)[0]; // concrete segments win over templates
  if (!match) return null;
  return { ...match, operation: spec.paths[match.path][m.toLowerCase()] };
}

function stripQuery(p) {
  let path = p;
  if (/^https?:\/\//i.test(path)) path = new URL(path).pathname;
  const q = path.search(/[?#]/);
  return q === -1 ? path : path.slice(0, q);
}

function mediaTypeOf(contentType) {
  return (contentType ?? '').split(';')[0].trim().toLowerCase();
}

function formatErrors(errors) {
  return errors
    .slice(0, 15)
    .map((e) => {
      const where = e.instancePath || '(root)';
      let msg = `  ${where} ${e.message}`;
      if (e.keyword === 'enum' || e.keyword === 'const') msg += ` ${JSON.stringify(e.params.allowedValues ?? e.params.allowedValue)}`;
      if (e.keyword === 'additionalProperties') msg += ` (${e.params.additionalProperty})`;
      return msg;
    })
    .join('\n') + (errors.length > 15 ? `\n  ... and ${errors.length - 15} more` : '');
}

/**
 * Validates one answer against the spec.
 * @param {string} method       HTTP method of the request
 * @param {string} actualPath   the request path (a full URL or a path; the query string is ignored)
 * @param {number} status       HTTP status of the answer
 * @param {*} body              parsed JSON body (object/array/...), a string for text bodies,
 *                              or undefined/null/'' for an empty body
 * @param {string} [contentType] the Content-Type header of the answer
 * @param {Headers|Object<string,string>} [headers] optional: the answer's headers; when given,
 *                              headers the spec marks required must be present and every
 *                              documented header that is present must match its schema
 * @returns {{path: string, operationId: string, status: string, mediaType: string|null}}
 */
export function checkResponse(method, actualPath, status, body, contentType, headers) {
  const { spec, ajv, routes, validators } = load();
  const path = stripQuery(actualPath);
  const m = String(method).toUpperCase();
  const found = findOperation(m, path);
  const label = `${m} ${path} -> ${status}`;
  if (!found) {
    const other = routes.filter((r) => r.regex.test(path)).map((r) => r.method);
    if (other.length) {
      throw new Error(`${label}: method ${m} is not documented for this path in openapi.yaml (documented: ${[...new Set(other)].join(', ')})`);
    }
    throw new Error(`${label}: no path in openapi.yaml matches ${path}`);
  }
  const op = found.operation;
  const opLabel = `${m} ${found.path} (${op.operationId})`;
  const responses = op.responses ?? {};
  const code = String(status);
  const wildcard = `${code[0]}XX`;
  const key = [code, wildcard, 'default'].find((k) => k in responses);
  if (!key) {
    throw new Error(`${label}: status ${status} is not documented for ${opLabel} (documented: ${Object.keys(responses).join(', ')})`);
  }
  const base = `#/paths/${pointerEscape(found.path)}/${m.toLowerCase()}/responses/${pointerEscape(key)}`;
  const { obj: response, pointer: respPointer } = deref(spec, responses[key], base);
  const content = response.content;
  if (headers) checkHeaders(spec, ajv, validators, response, respPointer, headers, `${label}: ${opLabel} ${key}`);

  const empty = body === undefined || body === null || body === '';
  if (!content || Object.keys(content).length === 0) {
    if (!empty) {
      throw new Error(`${label}: ${opLabel} documents no body for ${key}, but got ${preview(body)}`);
    }
    return { path: found.path, operationId: op.operationId, status: key, mediaType: null };
  }

  const mt = mediaTypeOf(contentType);
  if (!mt) {
    throw new Error(`${label}: ${opLabel} answers ${key} with ${Object.keys(content).join(' or ')}, but the answer has no Content-Type`);
  }
  if (!(mt in content)) {
    throw new Error(`${label}: Content-Type ${mt} is not documented for ${opLabel} ${key} (documented: ${Object.keys(content).join(', ')})`);
  }
  const media = content[mt];
  if (!media.schema) return { path: found.path, operationId: op.operationId, status: key, mediaType: mt };

  const schemaPointer = `${respPointer}/content/${pointerEscape(mt)}/schema`;
  let validate = validators.get(schemaPointer);
  if (!validate) {
    validate = ajv.compile({ $ref: `${SPEC_ID}${schemaPointer}` });
    validators.set(schemaPointer, validate);
  }
  let value = body;
  if (mt.endsWith('json') && typeof body === 'string') {
    try {
      value = JSON.parse(body);
    } catch {
      throw new Error(`${label}: ${mt} body is not valid JSON: ${preview(body)}`);
    }
  }
  if (!validate(value)) {
    throw new Error(
      `${label}: body does not match the schema of ${opLabel} ${key} ${mt}:\n${formatErrors(validate.errors)}\nbody: ${preview(value)}`,
    );
  }
  return { path: found.path, operationId: op.operationId, status: key, mediaType: mt };
}

function headerGetter(headers) {
  if (typeof headers.get === 'function') return (n) => headers.get(n);
  const lower = Object.fromEntries(Object.entries(headers).map(([k, v]) => [k.toLowerCase(), v]));
  return (n) => {
    const v = lower[n.toLowerCase()];
    return v === undefined ? null : Array.isArray(v) ? v.join(', ') : String(v);
  };
}

function checkHeaders(spec, ajv, validators, response, respPointer, headers, label) {
  const get = headerGetter(headers);
  for (const [name, h0] of Object.entries(response.headers ?? {})) {
    const { obj: h, pointer } = deref(spec, h0, `${respPointer}/headers/${pointerEscape(name)}`);
    const raw = get(name);
    if (raw === null || raw === undefined) {
      if (h.required) throw new Error(`${label}: required header ${name} is missing`);
      continue;
    }
    if (!h.schema) continue;
    const schemaPointer = `${pointer}/schema`;
    let validate = validators.get(schemaPointer);
    if (!validate) {
      validate = ajv.compile({ $ref: `${SPEC_ID}${schemaPointer}` });
      validators.set(schemaPointer, validate);
    }
    const type = deref(spec, h.schema, schemaPointer).obj.type;
    const value = (type === 'integer' || type === 'number') && /^-?[0-9]+(\.[0-9]+)?$/.test(raw.trim()) ? Number(raw) : raw;
    if (!validate(value)) {
      throw new Error(`${label}: header ${name}: ${JSON.stringify(raw)} does not match its schema:\n${formatErrors(validate.errors)}`);
    }
  }
}

function preview(v) {
  const s = typeof v === 'string' ? v : JSON.stringify(v);
  return s.length > 600 ? s.slice(0, 600) + '…' : s;
}
