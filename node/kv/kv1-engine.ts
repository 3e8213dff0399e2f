/**
 * KV version 1, Vault's plain `kv` engine: one unversioned JSON object per path. Entries live
 * through the barrier under a root: `kv/<storage id>/v1/<path>` for a mount (kv1Root), a token's
 * cubbyhole for `cubbyhole/` (node/kv/cubbyhole.ts).
 */
import type { EntryAdmission, SecureStorage } from '../barrier/secure-storage';

/** Where a KV v1 mount's entries live. */
export function kv1Root(storageId: string): string {
  return `kv/${storageId}/v1/`;
}

/** Unversioned JSON entries under one storage prefix (`root`, ending in `/`). */
export class Kv1Engine {
  constructor(private readonly root: string) {}

  /** The entry at `path`, admitted against `budget` before it is fetched (its size is the writer's). */
  read(s: SecureStorage, path: string, budget: EntryAdmission): Promise<Record<string, unknown> | null> {
    return s.getAdmitted<Record<string, unknown>>(this.root + path, budget);
  }

  /** Whether an entry exists at `path` (decides create or update), without fetching it. */
  exists(s: SecureStorage, path: string): Promise<boolean> {
    return s.exists(this.root + path);
  }

  write(s: SecureStorage, path: string, data: Record<string, unknown>): Promise<void> {
    return s.put(this.root + path, data);
  }

  delete(s: SecureStorage, path: string): Promise<void> {
    return s.delete(this.root + path);
  }

  /** Keys directly under `prefix` (folders end in `/`). */
  list(s: SecureStorage, prefix: string): Promise<string[]> {
    return s.list(`${this.root}${prefix === '' ? '' : `${prefix}/`}`);
  }
}
