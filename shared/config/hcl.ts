/**
 * HCL documents: OpenBao-style config files (`storage "redis" { ... }`, `listener "tcp" { ... }`)
 * and, for ACL policies, `path "..." { capabilities = [...] }`.
 *
 * Parsed with @cdktf/hcl2json: HashiCorp's own HCL parser (hashicorp/hcl, as Terraform uses it)
 * compiled to WebAssembly, published by HashiCorp under MPL-2.0. Chosen over hcl2-parser (a
 * GopherJS build by one maintainer) because its errors name the file, line and column
 * (hcl2-parser returns an empty error object), it loads in ~30 ms instead of ~300 ms and is
 * half the size. Its WebAssembly runtime costs ~60 MB of memory once loaded, so it is loaded
 * only when a document needs parsing (measured in /tmp with both libraries, see CHANGELOG).
 */

type Hcl2Json = { parse(filename: string, contents: string): Promise<Record<string, unknown>> };

let parser: Hcl2Json | undefined;

/** An HCL syntax error, with the library's location (file:line,column). */
export class HclError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'HclError';
  }
}

/**
 * Parses an HCL document to its JSON form: attributes as values, each block as an object keyed
 * by its labels whose leaves are arrays of bodies (`path "a" {x = 1}` → `{path: {a: [{x: 1}]}}`).
 */
export async function parseHcl(text: string, name: string): Promise<Record<string, unknown>> {
  // Required lazily (and without its typings, which pull the DOM lib into the whole program).
  parser ??= require('@cdktf/hcl2json') as Hcl2Json;
  try {
    return await parser.parse(name, text);
  } catch (err) {
    const message = String((err as Error).message ?? err)
      .replace(/^parse config: \[?/, '')
      .replace(/\]$/, '');
    throw new HclError(message);
  }
}

/** Blocks that carry their type as a label in OpenBao's config (`storage "redis" {...}`). */
const TYPED_STANZAS: Record<string, { key: string | null; allowed: readonly string[] }> = {
  storage: { key: 'type', allowed: ['redis', 'postgresql', 'inmem'] },
  ha_storage: { key: 'type', allowed: ['redis', 'postgresql'] },
  listener: { key: null, allowed: ['tcp'] },
  seal: { key: null, allowed: ['static'] },
};

/**
 * Turns a parsed OpenBao-style config into the object shape of our JSON/YAML files:
 * `storage "redis" { redis_url = ... }` → `storage: { type: "redis", redis_url: ... }`,
 * `listener "tcp" {...}` → `listener: {...}`; an unlabelled block is its body, at the top level
 * and inside a stanza (`telemetry { ... }` in a listener). Anything that
 * does not fit (two listeners, an unknown storage type) is an error naming the stanza. `hasKey`
 * tells whether the schema has a dotted key (a schema without `storage.type` reads Redis only);
 * the schema then checks the type against its own list (the gateway's has no inmem).
 */
export function hclConfigToObject(
  doc: Record<string, unknown>,
  hasKey: (dotted: string) => boolean,
): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [name, value] of Object.entries(doc)) {
    const stanza = TYPED_STANZAS[name];
    if (stanza) {
      // A schema without `<stanza>.type` supports only the first type: Redis.
      const typed =
        stanza.key && !hasKey(`${name}.${stanza.key}`)
          ? { key: null, allowed: stanza.allowed.slice(0, 1) }
          : stanza;
      out[name] = typedStanza(name, value, typed);
    } else if (Array.isArray(value) && value.length === 1 && isObject(value[0])) {
      out[name] = value[0];
    } else if (Array.isArray(value) && value.length > 1 && value.every(isObject)) {
      throw new Error(`"${name}" may appear only once`);
    } else {
      out[name] = value;
    }
  }
  return out;
}

function typedStanza(
  name: string,
  value: unknown,
  typed: { key: string | null; allowed: readonly string[] },
): Record<string, unknown> {
  const labels = isObject(value) ? Object.entries(value) : [];
  const only = labels[0];
  if (labels.length !== 1 || !only)
    throw new Error(
      `"${name}" must be one block with a type label, e.g. ${name} "${typed.allowed[0]}" { ... }`,
    );
  const [label, bodies] = only;
  if (!typed.allowed.includes(label))
    throw new Error(`unsupported ${name} type "${label}" (supported: ${typed.allowed.join(', ')})`);
  if (!Array.isArray(bodies) || bodies.length !== 1 || !isObject(bodies[0]))
    throw new Error(`"${name}" may appear only once`);
  // A block inside the stanza (`listener "tcp" { telemetry { ... } }`) is its body, as at the top.
  const body: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(bodies[0])) {
    if (Array.isArray(v) && v.length > 1 && v.every(isObject))
      throw new Error(`"${name}.${k}" may appear only once`);
    body[k] = Array.isArray(v) && v.length === 1 && isObject(v[0]) ? v[0] : v;
  }
  return typed.key ? { [typed.key]: label, ...body } : body;
}

function isObject(v: unknown): v is Record<string, unknown> {
  return v !== null && typeof v === 'object' && !Array.isArray(v);
}
