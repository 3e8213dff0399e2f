/**
 * Mount tables: which engine serves which path. Two tables, same shape — secrets engines
 * (`core/mounts`: `secret/` → KV v2, `team-a/` → KV v1, ...) and auth methods (`core/auth`:
 * `token/`, `approle/`, ...; paths relative to `auth/`). They live in storage through the
 * barrier, written only by the active node (fenced like any write), with the config stamp
 * (config-stamp.ts). Nodes keep each in memory (TermCache): the active for its term, a standby
 * serving reads only while the stamp is unchanged; changes are serialised.
 */
import { randomBytes, randomUUID } from 'node:crypto';
import { LwError } from '../../shared/errors';
import { newStamp } from '../barrier/config-stamp';
import type { SecureStorage } from '../barrier/secure-storage';
import { TermCache } from '../barrier/term-cache';

/** KV versions we serve. */
export type KvVersion = '1' | '2';

/** Engine and auth method types we serve. */
export type MountType = 'kv' | 'generic' | 'cubbyhole' | 'token' | 'approle';

/** One mount, with the fields `sys/mounts` / `sys/auth` report. */
export interface MountEntry {
  /** The mount path with a trailing slash: `secret/` (secrets), `approle/` (auth, after `auth/`). */
  path: string;
  type: MountType;
  description: string;
  accessor: string;
  uuid: string;
  /** KV mounts: the version. */
  options: { version?: KvVersion };
  config: { default_lease_ttl: number; max_lease_ttl: number; listing_visibility: string };
  local: boolean;
  seal_wrap: boolean;
  /** Where its data lives (`kv/<id>/...`, `auth/<id>/...`). */
  storage_id: string;
}

/** What a caller chooses when mounting. */
export type MountSpec = Pick<
  MountEntry,
  'type' | 'description' | 'options' | 'config' | 'local' | 'seal_wrap'
>;

interface StoredTable {
  mounts: MountEntry[];
}

const NO_CONFIG = { default_lease_ttl: 0, max_lease_ttl: 0, listing_visibility: '' };

/** What distinguishes the two tables. */
interface TableKind {
  storagePath: string;
  /** Paths nothing may be mounted at or under (and that cannot be unmounted). */
  reserved: readonly string[];
  /** The table before anything was written. */
  defaults: () => MountEntry[];
  /**
   * Mounts every table has, whatever is stored (added when a stored table lacks them, e.g. one
   * written before they existed). Their paths are reserved, so they can be neither mounted over
   * nor unmounted.
   */
  fixed: () => MountEntry[];
  /** Accessor prefix by type: `kv_1a2b3c4d`, `auth_approle_1a2b3c4d`. */
  accessorPrefix: (type: MountType) => string;
}

/** Secrets engines: KV v2 at `secret/` from the start (data written before mounts existed lives at kv/secret/). */
export const SECRET_MOUNTS: TableKind = {
  storagePath: 'core/mounts',
  reserved: ['sys/', 'auth/', 'cubbyhole/', 'identity/'],
  defaults: () => [
    {
      path: 'secret/',
      type: 'kv',
      description: 'key/value secret storage',
      accessor: 'kv_default0',
      uuid: '00000000-0000-0000-0000-000000000001',
      options: { version: '2' },
      config: { ...NO_CONFIG },
      local: false,
      seal_wrap: false,
      storage_id: 'secret',
    },
  ],
  fixed: () => [
    {
      path: 'cubbyhole/',
      type: 'cubbyhole',
      description: 'per-token private secret storage',
      accessor: 'cubbyhole_default0',
      uuid: '00000000-0000-0000-0000-000000000003',
      options: {},
      config: { ...NO_CONFIG },
      local: true,
      seal_wrap: false,
      // Unused: a cubbyhole's entries live under its token (node/kv/cubbyhole.ts).
      storage_id: 'cubbyhole',
    },
  ],
  accessorPrefix: (type) => `${type}_`,
};

/** Auth methods: the token store at `token/`, always there. */
export const AUTH_MOUNTS: TableKind = {
  storagePath: 'core/auth',
  reserved: ['token/'],
  defaults: () => [
    {
      path: 'token/',
      type: 'token',
      description: 'token based credentials',
      accessor: 'auth_token_default0',
      uuid: '00000000-0000-0000-0000-000000000002',
      options: {},
      config: { ...NO_CONFIG },
      local: false,
      seal_wrap: false,
      storage_id: 'token',
    },
  ],
  fixed: () => [],
  accessorPrefix: (type) => `auth_${type}_`,
};

/** `team-a` / `team-a/` → `team-a/`. */
export function mountPath(path: string): string {
  return path.endsWith('/') ? path : `${path}/`;
}

/** One mount table of the active node. */
export class MountTable {
  private readonly table: TermCache<StoredTable>;

  constructor(private readonly kind: TableKind) {
    this.table = new TermCache(async (s) => {
      const table = (await s.get<StoredTable>(kind.storagePath)) ?? { mounts: kind.defaults() };
      for (const f of kind.fixed()) if (!table.mounts.some((m) => m.path === f.path)) table.mounts.push(f);
      return table;
    });
  }

  /** Every mount, sorted by path. */
  async list(s: SecureStorage): Promise<MountEntry[]> {
    return [...(await this.table.get(s)).mounts].sort((a, b) => a.path.localeCompare(b.path));
  }

  /** The mount at exactly `path`, or null. */
  async get(s: SecureStorage, path: string): Promise<MountEntry | null> {
    const p = mountPath(path);
    return (await this.table.get(s)).mounts.find((m) => m.path === p) ?? null;
  }

  /** The mount serving `path` (longest matching prefix) and the rest of the path, or null. */
  async resolve(s: SecureStorage, path: string): Promise<{ mount: MountEntry; rest: string } | null> {
    const table = await this.table.get(s);
    const withSlash = `${path}/`;
    let best: MountEntry | undefined;
    for (const m of table.mounts) {
      if (withSlash.startsWith(m.path) && (!best || m.path.length > best.path.length)) best = m;
    }
    return best ? { mount: best, rest: path.slice(best.path.length) } : null;
  }

  /** Mounts an engine at `path`. Throws 400 for a reserved or overlapping path. */
  mount(s: SecureStorage, path: string, spec: MountSpec): Promise<MountEntry> {
    const p = mountPath(path);
    return this.change(s, (table) => {
      const reserved = this.kind.reserved.find((r) => p.startsWith(r) || r.startsWith(p));
      if (reserved) throw new LwError('LW_ERR_BAD_REQUEST', `cannot mount under reserved path "${reserved}"`);
      const clash = table.mounts.find((m) => p.startsWith(m.path) || m.path.startsWith(p));
      if (clash) throw new LwError('LW_ERR_BAD_REQUEST', `path is already in use at ${clash.path}`);
      const uuid = randomUUID();
      const entry: MountEntry = {
        path: p,
        accessor: `${this.kind.accessorPrefix(spec.type)}${randomBytes(4).toString('hex')}`,
        uuid,
        storage_id: uuid,
        ...spec,
      };
      table.mounts.push(entry);
      return entry;
    });
  }

  /** Removes the mount at exactly `path`; resolves the removed entry (null if none). */
  unmount(s: SecureStorage, path: string): Promise<MountEntry | null> {
    const p = mountPath(path);
    if (this.kind.reserved.includes(p)) throw new LwError('LW_ERR_BAD_REQUEST', `cannot unmount "${p}"`);
    return this.change(s, (table) => {
      const i = table.mounts.findIndex((m) => m.path === p);
      if (i === -1) return null;
      const [removed] = table.mounts.splice(i, 1);
      return removed ?? null;
    });
  }

  /** Updates the tunable fields of the mount at exactly `path`. Throws 400 if there is none. */
  tune(s: SecureStorage, path: string, update: (m: MountEntry) => void): Promise<MountEntry> {
    const p = mountPath(path);
    return this.change(s, (table) => {
      const m = table.mounts.find((e) => e.path === p);
      if (!m) throw new LwError('LW_ERR_BAD_REQUEST', `no mount at ${p}`);
      update(m);
      return m;
    });
  }

  private change<T>(s: SecureStorage, fn: (table: StoredTable) => T): Promise<T> {
    // The stamp changes with the table, so no standby answers from a table it loaded before.
    return this.table.update(s, fn, async (next) => {
      await s.batch([{ op: 'put', path: this.kind.storagePath, value: next }, newStamp()]);
    });
  }
}
