/**
 * The routes of a KV v2 mount, relative to the mount: `data/:path` (read, write, merge-patch,
 * soft-delete), `metadata/:path` (read, list, write, patch, delete), `delete|undelete|destroy/:path`,
 * `subkeys/:path`, `config`. Bodies and query parameters are validated here, with upstream's
 * messages and status codes; the versioning logic is in `kv/kv-engine.ts`.
 */
import { LwError } from '../../../shared/errors';
import { KvEngine, type MetaUpdate, type SecretMeta } from '../../kv/kv-engine';
import { formatDuration, parseDurationSeconds } from '../duration';
import { type Context, noContent, ok, perMount, type Reply, type Route } from '../route';

/** Vault's limits on custom_metadata. */
const MAX_CUSTOM_KEYS = 64;
const MAX_CUSTOM_KEY_LENGTH = 128;
const MAX_CUSTOM_VALUE_LENGTH = 512;

/** The engine of the request's mount. */
const kv = perMount((id) => new KvEngine(id));

const NOT_FOUND = () => new LwError('LW_ERR_NOT_FOUND', '');
const bad = (message: string) => new LwError('LW_ERR_BAD_REQUEST', message);

function nonNegativeInt(v: unknown, field: string): number {
  const n = typeof v === 'string' && /^\d{1,15}$/.test(v) ? Number(v) : v;
  if (typeof n !== 'number' || !Number.isSafeInteger(n) || n < 0)
    throw bad(`invalid ${field}: must be a non-negative integer`);
  return n;
}

function boolField(v: unknown, field: string): boolean {
  if (typeof v === 'boolean') return v;
  if (v === 'true' || v === 'false') return v === 'true';
  throw bad(`invalid ${field}: must be a boolean`);
}

function queryInt(raw: string | null, field: string): number {
  if (raw === null || raw === '') return 0;
  return nonNegativeInt(raw, field);
}

function versionList(body: Record<string, unknown>): number[] {
  const v = body.versions;
  const list = typeof v === 'number' || typeof v === 'string' ? [v] : v;
  if (!Array.isArray(list) || list.length === 0) throw bad('no version number provided');
  return list.map((x) => nonNegativeInt(x, 'version'));
}

function objectField(v: unknown, message: string): Record<string, unknown> {
  if (v === null || typeof v !== 'object' || Array.isArray(v)) throw bad(message);
  return v as Record<string, unknown>;
}

/**
 * options.cas from a data write or patch, as sent (undefined: none). The engine parses and checks
 * it (checkCas) once it has the secret's metadata, so a patch of a missing secret is 404 first.
 */
function casOption(body: Record<string, unknown>): unknown {
  if (body.options === undefined || body.options === null) return undefined;
  return objectField(body.options, 'invalid options').cas;
}

/** custom_metadata with upstream's limits; `nulls` allows null values (PATCH removes those keys). */
function customMetadata(v: unknown, nulls: boolean): Record<string, string | null> {
  const map = objectField(v, 'custom_metadata must be a map of strings');
  const entries = Object.entries(map);
  if (entries.length > MAX_CUSTOM_KEYS) throw bad(`custom_metadata may have at most ${MAX_CUSTOM_KEYS} keys`);
  for (const [k, val] of entries) {
    if (k === '' || k.length > MAX_CUSTOM_KEY_LENGTH || /[\x00-\x1f\x7f]/.test(k))
      throw bad(`custom_metadata keys must be 1 to ${MAX_CUSTOM_KEY_LENGTH} printable characters`);
    if (val === null && nulls) continue;
    if (typeof val !== 'string' || val.length > MAX_CUSTOM_VALUE_LENGTH || /[\x00-\x1f\x7f]/.test(val))
      throw bad(
        `custom_metadata values must be strings of at most ${MAX_CUSTOM_VALUE_LENGTH} printable characters`,
      );
  }
  return map as Record<string, string | null>;
}

function metaUpdate(body: Record<string, unknown>, patch: boolean): MetaUpdate {
  const u: MetaUpdate = {};
  if (body.max_versions !== undefined) u.max_versions = nonNegativeInt(body.max_versions, 'max_versions');
  if (body.cas_required !== undefined) u.cas_required = boolField(body.cas_required, 'cas_required');
  if (body.delete_version_after !== undefined)
    u.delete_version_after = parseDurationSeconds(body.delete_version_after, 'delete_version_after');
  if (body.custom_metadata !== undefined && body.custom_metadata !== null)
    u.custom_metadata = customMetadata(body.custom_metadata, patch);
  return u;
}

function metaView(meta: SecretMeta): Record<string, unknown> {
  return {
    cas_required: meta.cas_required,
    created_time: meta.created_time,
    current_version: meta.current_version,
    custom_metadata: meta.custom_metadata ?? null,
    delete_version_after: formatDuration(meta.delete_version_after ?? 0),
    max_versions: meta.max_versions,
    oldest_version: meta.oldest_version,
    updated_time: meta.updated_time,
    versions: meta.versions,
  };
}

/** The key structure of a secret with every leaf replaced by null, down to `depth` (0: all). */
function subkeys(data: Record<string, unknown>, depth: number, level = 1): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(data)) {
    const nested = v !== null && typeof v === 'object' && !Array.isArray(v);
    out[k] =
      nested && (depth === 0 || level < depth)
        ? subkeys(v as Record<string, unknown>, depth, level + 1)
        : null;
  }
  return out;
}

const path = (c: Context) => c.params.path as string;
/** A secret exists when it has metadata (a write then needs `update`, else `create`). */
const secretExists = async (c: Context) => (await kv(c).readMeta(c.storage, path(c))) !== null;

async function readData(c: Context): Promise<Reply> {
  const found = await kv(c).read(
    c.storage,
    path(c),
    queryInt(c.req.query.get('version'), 'version'),
    c.budget,
  );
  if (!found) throw NOT_FOUND();
  return { ...ok(found.secret), status: found.found ? 200 : 404 };
}

async function writeData(c: Context): Promise<Reply> {
  const body = await c.body();
  const data = objectField(body.data, 'no data provided');
  return ok(await kv(c).write(c.storage, path(c), data, casOption(body)));
}

async function patchData(c: Context): Promise<Reply> {
  const body = await c.body();
  const data = objectField(body.data, 'no data provided');
  return ok(await kv(c).patch(c.storage, path(c), data, casOption(body), c.budget));
}

async function subkeysRead(c: Context): Promise<Reply> {
  const depth = queryInt(c.req.query.get('depth'), 'depth');
  const found = await kv(c).read(
    c.storage,
    path(c),
    queryInt(c.req.query.get('version'), 'version'),
    c.budget,
  );
  if (!found?.found || !found.secret.data) throw NOT_FOUND();
  return ok({ subkeys: subkeys(found.secret.data, depth), metadata: found.secret.metadata });
}

async function listMeta(c: Context): Promise<Reply> {
  const keys = await kv(c).list(c.storage, c.params.path ?? '');
  if (keys.length === 0) throw NOT_FOUND();
  return ok({ keys });
}

async function readMeta(c: Context): Promise<Reply> {
  const meta = await kv(c).readMeta(c.storage, path(c));
  if (!meta) throw NOT_FOUND();
  return ok(metaView(meta));
}

function writeMeta(merge: boolean) {
  return async (c: Context): Promise<Reply> => {
    await kv(c).updateMeta(c.storage, path(c), metaUpdate(await c.body(), merge), merge);
    return noContent();
  };
}

function markVersions(change: 'delete' | 'undelete' | 'destroy') {
  return async (c: Context): Promise<Reply> => {
    await kv(c).mark(c.storage, path(c), versionList(await c.body()), change);
    return noContent();
  };
}

async function readConfig(c: Context): Promise<Reply> {
  const conf = await kv(c).config(c.storage);
  return ok({ ...conf, delete_version_after: formatDuration(conf.delete_version_after) });
}

async function writeConfig(c: Context): Promise<Reply> {
  const body = await c.body();
  const u = metaUpdate(body, false);
  if (u.custom_metadata !== undefined) throw bad('custom_metadata cannot be set on the mount config');
  await kv(c).writeConfig(c.storage, {
    ...(u.max_versions !== undefined ? { max_versions: u.max_versions } : {}),
    ...(u.cas_required !== undefined ? { cas_required: u.cas_required } : {}),
    ...(u.delete_version_after !== undefined ? { delete_version_after: u.delete_version_after } : {}),
  });
  return noContent();
}

/** The KV v2 route table. */
export const kvV2Routes: readonly Route[] = [
  { pattern: /^config$/, ops: { read: readConfig, write: writeConfig } },
  {
    pattern: /^data\/(?<path>.+)$/,
    exists: secretExists,
    ops: {
      read: readData,
      write: writeData,
      patch: patchData,
      delete: async (c) => {
        await kv(c).mark(c.storage, path(c), [0], 'delete');
        return noContent();
      },
    },
  },
  // LIST on the mount's root; reading it is 404 as upstream, writing it is 405.
  { pattern: /^metadata$/, ops: { list: listMeta, read: () => Promise.reject(NOT_FOUND()) } },
  {
    pattern: /^metadata\/(?<path>.+)$/,
    exists: secretExists,
    ops: {
      list: listMeta,
      read: readMeta,
      write: writeMeta(false),
      patch: writeMeta(true),
      delete: async (c) => {
        await kv(c).destroyAll(c.storage, path(c));
        return noContent();
      },
    },
  },
  { pattern: /^delete\/(?<path>.+)$/, ops: { write: markVersions('delete') } },
  { pattern: /^undelete\/(?<path>.+)$/, ops: { write: markVersions('undelete') } },
  { pattern: /^destroy\/(?<path>.+)$/, ops: { write: markVersions('destroy') } },
  { pattern: /^subkeys\/(?<path>.+)$/, ops: { read: subkeysRead } },
];
