/**
 * A value a node keeps in memory while storage says it is current.
 *
 * On the active node only it writes (fenced), so within a term its own writes are the only
 * changes: the cache is keyed by the term's storage view (a new term always reloads) and `update`
 * changes it in place. A standby serving reads never writes; its views carry the config stamp it
 * read from storage at the start of the request (config-stamp.ts), so a cache loaded under
 * another stamp — before a mount or policy change it has not seen — is never used.
 */
import type { SecureStorage } from './secure-storage';

export class TermCache<T> {
  private cached: { key: unknown; value: T } | undefined;
  private writing: Promise<unknown> = Promise.resolve();

  constructor(private readonly load: (s: SecureStorage) => Promise<T>) {}

  /** The value for this view's cache key (its term, or the stamp a standby read), loaded on first use. */
  async get(s: SecureStorage): Promise<T> {
    const key = s.cacheKey;
    if (this.cached !== undefined && this.cached.key === key) return this.cached.value;
    const value = await this.load(s);
    this.cached = { key, value };
    return value;
  }

  /**
   * Runs `change` on a copy of the current value; `persist` stores the new value; only then does
   * it become current. Changes run one at a time.
   */
  update<R>(s: SecureStorage, change: (draft: T) => R, persist: (value: T) => Promise<void>): Promise<R> {
    const run = this.writing.then(async () => {
      const next = structuredClone(await this.get(s));
      const result = change(next);
      await persist(next);
      if (this.cached !== undefined && this.cached.key === s.cacheKey) this.cached.value = next;
      return result;
    });
    this.writing = run.catch(() => undefined);
    return run;
  }
}
