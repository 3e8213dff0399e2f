/**
 * KV version 2, as Vault's `kv-v2` secrets engine behaves: versioned secrets with
 * check-and-set, soft delete, undelete, destroy and metadata. Storage layout (all through the
 * barrier): metadata at `kv/<mount>/meta/<path>`, each version at `kv/<mount>/ver/<path>/<n>`.
 * A write stores its version and the updated metadata in one atomic batch, so a crash never
 * leaves metadata pointing at a missing version.
 */
import { LwError, MESSAGES } from '../../shared/errors';
import type { JsonWriteOp, SecureStorage } from '../barrier/secure-storage';
import { KeyedMutex } from './keyed-mutex';

/** Versions kept per secret when max_versions is 0 (Vault's default). */
const DEFAULT_MAX_VERSIONS = 10;

/** Per-version metadata. */
export interface VersionMeta {
  created_time: string;
  deletion_time: string;
  destroyed: boolean;
}

/** A secret's metadata as stored. */
export interface SecretMeta {
  created_time: string;
  updated_time: string;
  current_version: number;
  oldest_version: number;
  max_versions: number;
  cas_required: boolean;
  versions: Record<string, VersionMeta>;
}

/** What a read returns. */
export interface SecretVersion {
  data: Record<string, unknown> | null;
  metadata: {
    version: number;
    created_time: string;
    deletion_time: string;
    destroyed: boolean;
    custom_metadata: null;
  };
}

function emptyMeta(now: string): SecretMeta {
  return {
    created_time: now,
    updated_time: now,
    current_version: 0,
    oldest_version: 0,
    max_versions: 0,
    cas_required: false,
    versions: {},
  };
}

/** One KV v2 mount. */
export class KvEngine {
  private readonly mutex = new KeyedMutex();

  constructor(readonly mount: string) {}

  private metaPath(path: string): string {
    return `kv/${this.mount}/meta/${path}`;
  }
  private versionPath(path: string, version: number): string {
    return `kv/${this.mount}/ver/${path}/${version}`;
  }

  /** Reads a version (latest when `version` is 0). Null when there is no such version. */
  async read(
    s: SecureStorage,
    path: string,
    version: number,
  ): Promise<{ found: boolean; secret: SecretVersion } | null> {
    const meta = await s.get<SecretMeta>(this.metaPath(path));
    if (!meta) return null;
    const v = version === 0 ? meta.current_version : version;
    const vm = meta.versions[String(v)];
    if (!vm) return null;
    const metadata = { version: v, ...vm, custom_metadata: null };
    if (vm.deletion_time !== '' || vm.destroyed) return { found: false, secret: { data: null, metadata } };
    const stored = await s.get<{ data: Record<string, unknown> }>(this.versionPath(path, v));
    if (!stored) return null;
    return { found: true, secret: { data: stored.data, metadata } };
  }

  /** Writes a new version, honouring `cas` (and cas_required). Returns the version's metadata. */
  write(
    s: SecureStorage,
    path: string,
    data: Record<string, unknown>,
    cas: number | undefined,
  ): Promise<SecretVersion['metadata']> {
    return this.mutex.run(path, async () => {
      const now = new Date().toISOString();
      const meta = (await s.get<SecretMeta>(this.metaPath(path))) ?? emptyMeta(now);
      if (cas === undefined && meta.cas_required) {
        throw new LwError('LW_ERR_BAD_REQUEST', 'check-and-set parameter required for this call');
      }
      if (cas !== undefined && cas !== meta.current_version)
        throw new LwError('LW_ERR_CAS_MISMATCH', MESSAGES.casMismatch);
      const version = meta.current_version + 1;
      const vm: VersionMeta = { created_time: now, deletion_time: '', destroyed: false };
      meta.versions[String(version)] = vm;
      meta.current_version = version;
      meta.updated_time = now;
      if (meta.oldest_version === 0) meta.oldest_version = version;
      const ops: JsonWriteOp[] = [{ op: 'put', path: this.versionPath(path, version), value: { data } }];
      ops.push(...this.trim(path, meta));
      ops.push({ op: 'put', path: this.metaPath(path), value: meta });
      await s.batch(ops);
      return { version, ...vm, custom_metadata: null };
    });
  }

  /** Drops versions beyond max_versions (oldest first); returns the deletes to batch. */
  private trim(path: string, meta: SecretMeta): JsonWriteOp[] {
    const keep = meta.max_versions > 0 ? meta.max_versions : DEFAULT_MAX_VERSIONS;
    const ops: JsonWriteOp[] = [];
    const versions = Object.keys(meta.versions)
      .map(Number)
      .sort((a, b) => a - b);
    while (versions.length > keep) {
      const v = versions.shift() as number;
      delete meta.versions[String(v)];
      ops.push({ op: 'delete', path: this.versionPath(path, v) });
    }
    meta.oldest_version = versions[0] ?? 0;
    return ops;
  }

  /**
   * Applies `change` to the listed versions (0 = the latest) and stores the metadata. `destroy`
   * also deletes the version data. Unknown versions are ignored, as Vault does.
   */
  mark(
    s: SecureStorage,
    path: string,
    versions: number[],
    change: 'delete' | 'undelete' | 'destroy',
  ): Promise<boolean> {
    return this.mutex.run(path, async () => {
      const meta = await s.get<SecretMeta>(this.metaPath(path));
      if (!meta) return false;
      const now = new Date().toISOString();
      const ops: JsonWriteOp[] = [];
      for (const requested of versions) {
        const v = requested === 0 ? meta.current_version : requested;
        const vm = meta.versions[String(v)];
        if (!vm || vm.destroyed) continue;
        if (change === 'delete' && vm.deletion_time === '') vm.deletion_time = now;
        if (change === 'undelete') vm.deletion_time = '';
        if (change === 'destroy') {
          vm.destroyed = true;
          ops.push({ op: 'delete', path: this.versionPath(path, v) });
        }
      }
      meta.updated_time = now;
      ops.push({ op: 'put', path: this.metaPath(path), value: meta });
      await s.batch(ops);
      return true;
    });
  }

  readMeta(s: SecureStorage, path: string): Promise<SecretMeta | null> {
    return s.get<SecretMeta>(this.metaPath(path));
  }

  /** Updates max_versions / cas_required, creating empty metadata if needed. */
  updateMeta(
    s: SecureStorage,
    path: string,
    patch: { max_versions?: number; cas_required?: boolean },
  ): Promise<void> {
    return this.mutex.run(path, async () => {
      const now = new Date().toISOString();
      const meta = (await s.get<SecretMeta>(this.metaPath(path))) ?? emptyMeta(now);
      if (patch.max_versions !== undefined) meta.max_versions = patch.max_versions;
      if (patch.cas_required !== undefined) meta.cas_required = patch.cas_required;
      meta.updated_time = now;
      await s.batch([...this.trim(path, meta), { op: 'put', path: this.metaPath(path), value: meta }]);
    });
  }

  /** Deletes the metadata and every version. */
  destroyAll(s: SecureStorage, path: string): Promise<void> {
    return this.mutex.run(path, async () => {
      const meta = await s.get<SecretMeta>(this.metaPath(path));
      if (!meta) return;
      const ops: JsonWriteOp[] = Object.keys(meta.versions).map((v) => ({
        op: 'delete',
        path: this.versionPath(path, Number(v)),
      }));
      ops.push({ op: 'delete', path: this.metaPath(path) });
      await s.batch(ops);
    });
  }

  /** Keys directly under `prefix` (folders end in `/`). */
  list(s: SecureStorage, prefix: string): Promise<string[]> {
    return s.list(`kv/${this.mount}/meta/${prefix === '' ? '' : `${prefix}/`}`);
  }
}
