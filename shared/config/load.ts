/**
 * Loading and validating configuration: defaults < config file (`LEADERWAY_CONFIG`: JSON, YAML
 * or OpenBao-style HCL) < environment. Validation is strict: an unknown key or an invalid value is a
 * `ConfigError`, whose message names the key and its environment variable; entry points turn it
 * into exit code 2. This is the only module that reads `process.env`.
 */
import { readFileSync } from 'node:fs';
import { extname } from 'node:path';
import convict from 'convict';
import YAML from 'yaml';
import { registerFormats } from './formats';
import { hclConfigToObject, parseHcl } from './hcl';

/** A configuration problem the operator must fix. Entry points exit with `exitCode`. */
export class ConfigError extends Error {
  readonly exitCode = 2;
  constructor(message: string) {
    super(message);
    this.name = 'ConfigError';
  }
}

/** One schema entry, as convict takes it, with the fields we require on every key. */
export interface SchemaEntry {
  doc: string;
  format: unknown;
  default: unknown;
  env: string;
  sensitive?: boolean;
  /** Extra environment variables read when `env` is unset, in order (e.g. VAULT_API_ADDR). */
  envAliases?: string[];
}
/** A schema: nested objects of entries. */
export type Schema = { [key: string]: SchemaEntry | Schema };

function isEntry(v: SchemaEntry | Schema): v is SchemaEntry {
  return typeof (v as SchemaEntry).doc === 'string' && 'default' in v;
}

/** Every entry of a schema with its dotted key, in declaration order. */
export function schemaEntries(schema: Schema, prefix = ''): Array<{ key: string; entry: SchemaEntry }> {
  const out: Array<{ key: string; entry: SchemaEntry }> = [];
  for (const [k, v] of Object.entries(schema)) {
    const key = prefix ? `${prefix}.${k}` : k;
    if (isEntry(v)) out.push({ key, entry: v });
    else out.push(...schemaEntries(v, key));
  }
  return out;
}

/** The convict schema: our entries without `envAliases`. */
function toConvict(schema: Schema): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(schema)) {
    if (isEntry(v)) {
      const { envAliases: _aliases, ...rest } = v;
      out[k] = rest;
    } else out[k] = toConvict(v);
  }
  return out;
}

async function parseFile(path: string, schema: Schema): Promise<unknown> {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    throw new ConfigError(`cannot read config file ${path} (LEADERWAY_CONFIG): ${(err as Error).message}`);
  }
  try {
    const ext = extname(path).toLowerCase();
    let parsed: unknown;
    if (ext === '.hcl') {
      const keys = new Set(schemaEntries(schema).map((e) => e.key));
      parsed = hclConfigToObject(await parseHcl(text, path), (k) => keys.has(k));
    } else if (ext === '.yaml' || ext === '.yml') parsed = YAML.parse(text);
    else parsed = JSON.parse(text);
    if (parsed === null || parsed === undefined) return {};
    if (typeof parsed !== 'object' || Array.isArray(parsed))
      throw new Error('the top level must be an object');
    return parsed;
  } catch (err) {
    throw new ConfigError(`config file ${path} (LEADERWAY_CONFIG) is not valid: ${(err as Error).message}`);
  }
}

/** Options for `loadConfig`. */
export interface LoadOptions {
  /** The environment to read; defaults to `process.env`. */
  env?: NodeJS.ProcessEnv;
  /** Values applied over the file and under the environment (used by `leaderway dev`). */
  overrides?: Record<string, unknown>;
  /** Read `LEADERWAY_CONFIG` from the environment (default true). */
  useConfigFile?: boolean;
  /** Variables that must not be set, with the reason (the gateway refuses the seal key). */
  forbiddenEnv?: Record<string, string>;
}

/**
 * Loads, validates and freezes a configuration for `schema`. Throws `ConfigError` naming the
 * offending key and its environment variable; sensitive values are never echoed.
 */
export async function loadConfig<T>(schema: Schema, opts: LoadOptions = {}): Promise<T> {
  registerFormats();
  const source = opts.env ?? process.env;
  for (const [name, why] of Object.entries(opts.forbiddenEnv ?? {})) {
    if (source[name] !== undefined && source[name] !== '')
      throw new ConfigError(`${name} must not be set: ${why}`);
  }
  const entries = schemaEntries(schema);
  // Aliases (VAULT_API_ADDR for BAO_API_ADDR, ...) fill the primary variable when it is unset.
  const env: NodeJS.ProcessEnv = { ...source };
  for (const { entry } of entries) {
    if (env[entry.env] !== undefined && env[entry.env] !== '') continue;
    const alias = entry.envAliases?.find((a) => source[a] !== undefined && source[a] !== '');
    if (alias) env[entry.env] = source[alias];
    else if (env[entry.env] === '') delete env[entry.env];
  }
  const conf = convict(toConvict(schema) as convict.Schema<T>, { env, args: [] });
  const file = opts.useConfigFile === false ? undefined : source.LEADERWAY_CONFIG;
  // convict applies the environment over whatever load() brings, so the environment wins.
  if (file) conf.load((await parseFile(file, schema)) as Partial<T>);
  if (opts.overrides) conf.load(opts.overrides as Partial<T>);
  try {
    conf.validate({ allowed: 'strict' });
  } catch (err) {
    throw new ConfigError(describeErrors((err as Error).message, entries));
  }
  return deepFreeze(conf.getProperties()) as T;
}

/**
 * Masks the passwords of URLs in an echoed value (`scheme://user:password@`, `...password=...`):
 * a Redis or PostgreSQL URL is not a sensitive key (its value helps fix a typo), its password is.
 */
export function maskUrlPasswords(text: string): string {
  return (
    text
      // Up to the last @ of the URL: a password may hold an unencoded @ (masking more is harmless).
      .replace(/([a-z][a-z0-9+.-]*:\/\/[^\s/@:"]*:)[^\s"]*@/gi, '$1***@')
      .replace(/(password=)[^\s&"]*/gi, '$1***')
  );
}

/**
 * Rewrites convict's messages so each names the key's environment variable (and echoes no URL
 * password).
 */
function describeErrors(message: string, entries: Array<{ key: string; entry: SchemaEntry }>): string {
  const byKey = new Map(entries.map((e) => [e.key, e.entry]));
  const lines = maskUrlPasswords(message)
    .split('\n')
    .map((line) => {
      const undeclared = /^configuration param '(.+)' not declared in the schema$/.exec(line);
      if (undeclared) return `unknown configuration key '${undeclared[1]}'`;
      const m = /^([A-Za-z0-9_.]+): (.*)$/s.exec(line);
      const entry = m ? byKey.get(m[1] ?? '') : undefined;
      if (!m || !entry) return line;
      const names = [entry.env, ...(entry.envAliases ?? [])].join(' or ');
      return `${m[1]} (${names}): ${m[2]}`;
    });
  return `invalid configuration:\n  ${lines.join('\n  ')}`;
}

function deepFreeze<T>(o: T): T {
  if (o && typeof o === 'object') {
    for (const v of Object.values(o)) deepFreeze(v);
    Object.freeze(o);
  }
  return o;
}

/** Environment variables that start with `LEADERWAY_` but no schema knows: likely typos. */
export function unknownEnvVars(
  schemas: Schema[],
  env: NodeJS.ProcessEnv = process.env,
  extra: string[] = [],
): string[] {
  const known = new Set<string>(['LEADERWAY_CONFIG', ...extra]);
  for (const s of schemas) for (const { entry } of schemaEntries(s)) known.add(entry.env);
  return Object.keys(env)
    .filter((k) => k.startsWith('LEADERWAY_') && !known.has(k))
    .sort();
}

/** Reads one environment variable (for the few flags outside any schema, e.g. LEADERWAY_CONFIG). */
export function readEnv(name: string, env: NodeJS.ProcessEnv = process.env): string | undefined {
  const v = env[name];
  return v === undefined || v === '' ? undefined : v;
}
