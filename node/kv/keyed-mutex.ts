/**
 * Serialises async work per key. KV writes are read-modify-write (metadata, then version), so two
 * concurrent writes to one secret on the active node must not interleave; different secrets run
 * in parallel. Only the active node writes, so an in-process lock is enough (fencing covers the
 * cross-process case).
 */
export class KeyedMutex {
  private readonly tails = new Map<string, Promise<void>>();

  /** Runs `fn` after every earlier `run` for the same key has settled. */
  async run<T>(key: string, fn: () => Promise<T>): Promise<T> {
    const prev = this.tails.get(key) ?? Promise.resolve();
    let release!: () => void;
    const mine = new Promise<void>((r) => {
      release = r;
    });
    const tail = prev.then(() => mine);
    this.tails.set(key, tail);
    await prev;
    try {
      return await fn();
    } finally {
      release();
      if (this.tails.get(key) === tail) this.tails.delete(key);
    }
  }
}
