/**
 * KV version 2, as Vault's `kv-v2` secrets engine behaves: versioned secrets with
 * check-and-set, merge patches, soft delete, undelete, destroy, metadata (custom_metadata,
 * delete_version_after) and a mount-wide config. Storage layout (all through the barrier), under
 * `kv/<storage id>/`: `config`, metadata at `meta/<path>`, each version at `ver/<path>/<n>`. A
 * write stores its version and the updated metadata in one atomic batch, so a crash never leaves
 * metadata pointing at a missing version.
 */
import { LwError, MESSAGES } from '../../shared/errors';
import type { EntryAdmission, JsonWriteOp, SecureStorage } from '../barrier/secure-storage';
import { KeyedMutex } from './keyed-mutex';
import { mergePatch } from './merge-patch';

/** Versions kept per secret when neither the secret nor the mount sets max_versions (Vault's default). */
const DEFAULT_MAX_VERSIONS = 10;

/** Per-version metadata. `deletion_time` may lie in the future (delete_version_after). */
export interface VersionMeta {
  created_time: string;
  deletion_time: string;
  destroyed: boolean;
}

/** A secret's metadata as stored. `delete_version_after` is in seconds (0: never). */
export interface SecretMeta {
  created_time: string;
  updated_time: string;
  current_version: number;
  oldest_version: number;
  max_versions: number;
  cas_required: boolean;
  delete_version_after?: number;
  custom_metadata?: Record<string, string> | null;
  versions: Record<string, VersionMeta>;
}

/** The mount-wide settings at `<mount>/config`. */
export interface KvConfig {
  max_versions: number;
  cas_required: boolean;
  delete_version_after: number;
}

/** A version's metadata as responses show it. */
export type VersionView = VersionMeta & { version: number; custom_metadata: Record<string, string> | null };

/** What a read returns. */
export interface SecretVersion {
  data: Record<string, unknown> | null;
  metadata: VersionView;
}

/** The metadata fields a metadata write may set. */
export interface MetaUpdate {
  max_versions?: number;
  cas_required?: boolean;
  delete_version_after?: number;
  custom_metadata?: Record<string, string | null>;
}

/**
 * What a check-and-set write is answered, as OpenBao's kv plugin words it (validateCheckAndSetOption):
 * all 400.
 */
export const CAS_MESSAGES = {
  mismatch: MESSAGES.casMismatch,
  required: 'check-and-set parameter required for this call',
  invalid: 'error parsing check-and-set parameter',
} as const;

/**
 * `options.cas` as a version number. Integers (JSON numbers, or strings of decimal digits) are
 * taken; a negative one can match no version, so it is answered as a mismatch, as upstream. Any
 * other value is refused with upstream's parsing message — stricter than upstream, whose weak
 * decoding truncates 1.5 to 1, reads true as 1 and "" or null as 0, and so would let a malformed
 * cas write over a version its author never named.
 */
export function parseCas(raw: unknown): number {
  const n = typeof raw === 'string' && /^-?(0|[1-9][0-9]{0,14})$/.test(raw) ? Number(raw) : raw;
  if (typeof n !== 'number' || !Number.isSafeInteger(n))
    throw new LwError('LW_ERR_BAD_REQUEST', CAS_MESSAGES.invalid);
  return n;
}

/**
 * The check-and-set rule for a write over a secret at `currentVersion` (0: none yet): `cas` is
 * the raw `options.cas` (undefined: not given), `required` the secret's or the mount's
 * cas_required. Throws 400 with upstream's message; returns when the write may go ahead.
 */
export function checkCas(cas: unknown, currentVersion: number, required: boolean): void {
  if (cas === undefined) {
    if (required) throw new LwError('LW_ERR_BAD_REQUEST', CAS_MESSAGES.required);
    return;
  }
  if (parseCas(cas) !== currentVersion) throw new LwError('LW_ERR_CAS_MISMATCH', CAS_MESSAGES.mismatch);
}

function emptyMeta(now: string): SecretMeta {
  return {
    created_time: now,
    updated_time: now,
    current_version: 0,
    oldest_version: 0,
    max_versions: 0,
    cas_required: false,
    delete_version_after: 0,
    custom_metadata: null,
    versions: {},
  };
}

/** Whether a version is deleted (now or by an expired delete_version_after) or destroyed. */
export function isGone(vm: VersionMeta, now = Date.now()): boolean {
  return vm.destroyed || (vm.deletion_time !== '' && Date.parse(vm.deletion_time) <= now);
}

/** One KV v2 mount. */
export class KvEngine {
  private readonly mutex = new KeyedMutex();
  private readonly root: string;

  constructor(storageId: string) {
    this.root = `kv/${storageId}/`;
  }

  private metaPath(path: string): string {
    return `${this.root}meta/${path}`;
  }
  private versionPath(path: string, version: number): string {
    return `${this.root}ver/${path}/${version}`;
  }

  async config(s: SecureStorage): Promise<KvConfig> {
    return (
      (await s.get<KvConfig>(`${this.root}config`)) ?? {
        max_versions: 0,
        cas_required: false,
        delete_version_after: 0,
      }
    );
  }

  async writeConfig(s: SecureStorage, update: Partial<KvConfig>): Promise<void> {
    await s.put(`${this.root}config`, { ...(await this.config(s)), ...update });
  }

  private view(meta: SecretMeta, version: number): VersionView | null {
    const vm = meta.versions[String(version)];
    return vm ? { version, ...vm, custom_metadata: meta.custom_metadata ?? null } : null;
  }

  /**
   * Reads a version (latest when `version` is 0). Null when there is no such version; `found`
   * is false for a deleted or destroyed one (Vault answers 404 with its metadata). The version's
   * data, whose size the writer chose, is admitted against `budget` before it is fetched.
   */
  async read(
    s: SecureStorage,
    path: string,
    version: number,
    budget: EntryAdmission,
  ): Promise<{ found: boolean; secret: SecretVersion } | null> {
    const meta = await s.get<SecretMeta>(this.metaPath(path));
    if (!meta) return null;
    const v = version === 0 ? meta.current_version : version;
    const metadata = this.view(meta, v);
    if (!metadata) return null;
    if (isGone(metadata)) return { found: false, secret: { data: null, metadata } };
    const stored = await s.getAdmitted<{ data: Record<string, unknown> }>(this.versionPath(path, v), budget);
    if (!stored) return null;
    return { found: true, secret: { data: stored.data, metadata } };
  }

  /**
   * Writes a new version, honouring `cas` (the raw `options.cas`, undefined when not given; see
   * checkCas) and cas_required. Returns the version's metadata.
   */
  write(s: SecureStorage, path: string, data: Record<string, unknown>, cas: unknown): Promise<VersionView> {
    return this.mutex.run(path, async () => {
      const now = new Date();
      const meta = (await s.get<SecretMeta>(this.metaPath(path))) ?? emptyMeta(now.toISOString());
      return this.store(s, path, meta, data, cas, now);
    });
  }

  /**
   * Applies a JSON merge patch (RFC 7386) to the latest version and stores the result as a new
   * version. Throws 404 when there is no live latest version (before `cas` is looked at, as
   * upstream). The latest version is admitted against `budget` before it is fetched, as a read's.
   */
  patch(
    s: SecureStorage,
    path: string,
    patch: Record<string, unknown>,
    cas: unknown,
    budget: EntryAdmission,
  ): Promise<VersionView> {
    return this.mutex.run(path, async () => {
      const now = new Date();
      const meta = await s.get<SecretMeta>(this.metaPath(path));
      const latest = meta ? this.view(meta, meta.current_version) : null;
      const stored =
        meta && latest && !isGone(latest)
          ? await s.getAdmitted<{ data: Record<string, unknown> }>(
              this.versionPath(path, meta.current_version),
              budget,
            )
          : null;
      if (!meta || !stored) throw new LwError('LW_ERR_NOT_FOUND', '');
      const merged = mergePatch(stored.data, patch) as Record<string, unknown>;
      return this.store(s, path, meta, merged, cas, now);
    });
  }

  private async store(
    s: SecureStorage,
    path: string,
    meta: SecretMeta,
    data: Record<string, unknown>,
    cas: unknown,
    now: Date,
  ): Promise<VersionView> {
    const config = await this.config(s);
    checkCas(cas, meta.current_version, meta.cas_required || config.cas_required);
    const version = meta.current_version + 1;
    const after = meta.delete_version_after || config.delete_version_after;
    const vm: VersionMeta = {
      created_time: now.toISOString(),
      deletion_time: after > 0 ? new Date(now.getTime() + after * 1000).toISOString() : '',
      destroyed: false,
    };
    meta.versions[String(version)] = vm;
    meta.current_version = version;
    meta.updated_time = vm.created_time;
    if (meta.oldest_version === 0) meta.oldest_version = version;
    const ops: JsonWriteOp[] = [{ op: 'put', path: this.versionPath(path, version), value: { data } }];
    ops.push(...this.trim(path, meta, config));
    ops.push({ op: 'put', path: this.metaPath(path), value: meta });
    await s.batch(ops);
    return { version, ...vm, custom_metadata: meta.custom_metadata ?? null };
  }

  /** Drops versions beyond max_versions (oldest first); returns the deletes to batch. */
  private trim(path: string, meta: SecretMeta, config: KvConfig): JsonWriteOp[] {
    const keep = meta.max_versions || config.max_versions || DEFAULT_MAX_VERSIONS;
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
        if (change === 'delete' && !isGone(vm)) vm.deletion_time = now;
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

  /**
   * Updates metadata fields, creating empty metadata if needed. `custom_metadata` replaces the
   * map (`merge`: false, POST) or is merged into it, `null` removing a key (`merge`: true, PATCH).
   * PATCH on a secret without metadata is 404, as upstream.
   */
  updateMeta(s: SecureStorage, path: string, update: MetaUpdate, merge: boolean): Promise<void> {
    return this.mutex.run(path, async () => {
      const now = new Date().toISOString();
      const existing = await s.get<SecretMeta>(this.metaPath(path));
      if (!existing && merge) throw new LwError('LW_ERR_NOT_FOUND', '');
      const meta = existing ?? emptyMeta(now);
      if (update.max_versions !== undefined) meta.max_versions = update.max_versions;
      if (update.cas_required !== undefined) meta.cas_required = update.cas_required;
      if (update.delete_version_after !== undefined) meta.delete_version_after = update.delete_version_after;
      if (update.custom_metadata !== undefined) {
        const base = merge ? { ...(meta.custom_metadata ?? {}) } : {};
        for (const [k, v] of Object.entries(update.custom_metadata)) {
          if (v === null) delete base[k];
          else base[k] = v;
        }
        meta.custom_metadata = base;
      }
      meta.updated_time = now;
      const config = await this.config(s);
      await s.batch([
        ...this.trim(path, meta, config),
        { op: 'put', path: this.metaPath(path), value: meta },
      ]);
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
    return s.list(`${this.root}meta/${prefix === '' ? '' : `${prefix}/`}`);
  }
}
