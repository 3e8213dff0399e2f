/**
 * KV version 1, Vault's plain `kv` engine: one unversioned JSON object per path. Entries live
 * through the barrier at `kv/<storage id>/v1/<path>`.
 */
import type { SecureStorage } from '../barrier/secure-storage';

/** One KV v1 mount. */
export class Kv1Engine {
  private readonly root: string;

  constructor(storageId: string) {
    this.root = `kv/${storageId}/v1/`;
  }

  read(s: SecureStorage, path: string): Promise<Record<string, unknown> | null> {
    return s.get<Record<string, unknown>>(this.root + path);
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
