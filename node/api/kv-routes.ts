/**
 * HTTP routes of the KV v2 mount at `secret/`: data, metadata, delete, undelete, destroy.
 * Paths and bodies are validated here; the versioning logic is in `kv/kv-engine.ts`.
 */
import { LwError } from '../../shared/errors';
import type { AnyResponse } from '../../shared/http/respond';
import { sendJson } from '../../shared/http/respond';
import type { SecureStorage } from '../barrier/secure-storage';
import type { KvEngine, SecretMeta } from '../kv/kv-engine';
import { envelope } from './envelope';
import type { ApiRequest } from './request';
import { readJsonBody } from './request';

const NOT_FOUND = new LwError('LW_ERR_NOT_FOUND', '');

function methodNotAllowed(): LwError {
  return new LwError('LW_ERR_METHOD_NOT_ALLOWED', 'unsupported operation');
}

function parseVersion(raw: string | null): number {
  if (raw === null || raw === '') return 0;
  if (!/^\d{1,15}$/.test(raw))
    throw new LwError('LW_ERR_BAD_REQUEST', 'invalid version: must be a non-negative integer');
  return Number(raw);
}

function versionList(body: Record<string, unknown>): number[] {
  const v = body.versions;
  const list = typeof v === 'number' || typeof v === 'string' ? [v] : v;
  if (!Array.isArray(list) || list.length === 0)
    throw new LwError('LW_ERR_BAD_REQUEST', 'no version number provided');
  return list.map((x) => {
    const n = typeof x === 'string' && /^\d{1,15}$/.test(x) ? Number(x) : x;
    if (typeof n !== 'number' || !Number.isSafeInteger(n) || n < 0) {
      throw new LwError('LW_ERR_BAD_REQUEST', 'invalid version: must be a non-negative integer');
    }
    return n;
  });
}

function metaView(meta: SecretMeta): Record<string, unknown> {
  return {
    cas_required: meta.cas_required,
    created_time: meta.created_time,
    current_version: meta.current_version,
    custom_metadata: null,
    delete_version_after: '0s',
    max_versions: meta.max_versions,
    oldest_version: meta.oldest_version,
    updated_time: meta.updated_time,
    versions: meta.versions,
  };
}

/** Handles `secret/<sub>/<path>` on the active node. `rest` is the path after the mount. */
export async function kvRoute(
  req: ApiRequest,
  res: AnyResponse,
  kv: KvEngine,
  s: SecureStorage,
  rest: string,
  maxBody: number,
): Promise<void> {
  const slash = rest.indexOf('/');
  const sub = slash === -1 ? rest : rest.slice(0, slash);
  const path = slash === -1 ? '' : rest.slice(slash + 1);
  const op = req.operation;
  switch (sub) {
    case 'data': {
      if (path === '') throw NOT_FOUND;
      if (op === 'read') {
        const found = await kv.read(s, path, parseVersion(req.query.get('version')));
        if (!found) throw NOT_FOUND;
        sendJson(res, found.found ? 200 : 404, envelope(found.secret));
        return;
      }
      if (op === 'write' && req.method === 'PATCH') {
        // Vault's PATCH merges into the latest version (`vault kv patch`); treating it as a write
        // would silently drop every key the patch leaves out. Refuse it until merge is supported.
        throw new LwError(
          'LW_ERR_METHOD_NOT_ALLOWED',
          'PATCH is not supported: read the secret, then write it whole with options.cas',
        );
      }
      if (op === 'write') {
        const body = await readJsonBody(req.raw, maxBody);
        const data = body.data;
        if (data === null || typeof data !== 'object' || Array.isArray(data)) {
          throw new LwError('LW_ERR_BAD_REQUEST', 'no data provided');
        }
        const options = (body.options ?? {}) as Record<string, unknown>;
        if (typeof options !== 'object' || options === null || Array.isArray(options))
          throw new LwError('LW_ERR_BAD_REQUEST', 'invalid options');
        let cas: number | undefined;
        if (options.cas !== undefined) {
          const c =
            typeof options.cas === 'string' && /^\d{1,15}$/.test(options.cas)
              ? Number(options.cas)
              : options.cas;
          if (typeof c !== 'number' || !Number.isSafeInteger(c) || c < 0) {
            throw new LwError('LW_ERR_BAD_REQUEST', 'invalid cas: must be a non-negative integer');
          }
          cas = c;
        }
        const meta = await kv.write(s, path, data as Record<string, unknown>, cas);
        sendJson(res, 200, envelope(meta));
        return;
      }
      if (op === 'delete') {
        await kv.mark(s, path, [0], 'delete');
        sendJson(res, 204, undefined);
        return;
      }
      throw methodNotAllowed();
    }
    case 'delete':
    case 'undelete':
    case 'destroy': {
      if (path === '') throw NOT_FOUND;
      if (op !== 'write') throw methodNotAllowed();
      const versions = versionList(await readJsonBody(req.raw, maxBody));
      await kv.mark(s, path, versions, sub);
      sendJson(res, 204, undefined);
      return;
    }
    case 'metadata': {
      if (op === 'list') {
        const keys = await kv.list(s, path);
        if (keys.length === 0) throw NOT_FOUND;
        sendJson(res, 200, envelope({ keys }));
        return;
      }
      if (path === '') throw op === 'read' ? NOT_FOUND : methodNotAllowed();
      if (op === 'read') {
        const meta = await kv.readMeta(s, path);
        if (!meta) throw NOT_FOUND;
        sendJson(res, 200, envelope(metaView(meta)));
        return;
      }
      if (op === 'write') {
        const body = await readJsonBody(req.raw, maxBody);
        const patch: { max_versions?: number; cas_required?: boolean } = {};
        if (body.max_versions !== undefined) {
          if (!Number.isSafeInteger(body.max_versions) || (body.max_versions as number) < 0) {
            throw new LwError('LW_ERR_BAD_REQUEST', 'invalid max_versions');
          }
          patch.max_versions = body.max_versions as number;
        }
        if (body.cas_required !== undefined) {
          if (typeof body.cas_required !== 'boolean')
            throw new LwError('LW_ERR_BAD_REQUEST', 'invalid cas_required');
          patch.cas_required = body.cas_required;
        }
        await kv.updateMeta(s, path, patch);
        sendJson(res, 204, undefined);
        return;
      }
      if (op === 'delete') {
        await kv.destroyAll(s, path);
        sendJson(res, 204, undefined);
        return;
      }
      throw methodNotAllowed();
    }
    case 'config':
      if (op !== 'read') throw methodNotAllowed();
      sendJson(res, 200, envelope({ cas_required: false, delete_version_after: '0s', max_versions: 0 }));
      return;
    default:
      throw NOT_FOUND;
  }
}
