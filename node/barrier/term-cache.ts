/**
 * A value the active node keeps in memory for one term. Only the active node writes (fenced),
 * so within a term its own writes are the only changes; each term has its own storage view, so
 * a new term always reloads. `update` serialises read-modify-write changes.
 */
import type { SecureStorage } from './secure-storage';

export class TermCache<T> {
  private cached: { storage: SecureStorage; value: T } | undefined;
  private writing: Promise<unknown> = Promise.resolve();

  constructor(private readonly load: (s: SecureStorage) => Promise<T>) {}

  /** The value for this term's storage view, loaded on first use. */
  async get(s: SecureStorage): Promise<T> {
    if (this.cached?.storage === s) return this.cached.value;
    const value = await this.load(s);
    this.cached = { storage: s, value };
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
      if (this.cached?.storage === s) this.cached.value = next;
      return result;
    });
    this.writing = run.catch(() => undefined);
    return run;
  }
}
