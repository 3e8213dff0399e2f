/**
 * Whether a request has stored anything yet. A node marks an error "not served" (the gateway
 * may then retry the request elsewhere) only when nothing was stored for it; storage that fails
 * after an earlier write of the same request (a token use, then the write itself) must not be
 * retried as if nothing had happened. The backends note each applied write in the request's
 * async context.
 */
import { AsyncLocalStorage } from 'node:async_hooks';

interface WriteScope {
  applied: number;
}

const scope = new AsyncLocalStorage<WriteScope>();

/** Runs `fn` in a fresh scope; `applied()` then tells whether it stored anything. */
export function withWriteScope<T>(fn: () => T): { result: T; applied: () => boolean } {
  const s: WriteScope = { applied: 0 };
  const result = scope.run(s, fn);
  return { result, applied: () => s.applied > 0 };
}

/** Notes that a write was applied for the current request (if there is one). */
export function noteApplied(): void {
  const s = scope.getStore();
  if (s) s.applied++;
}
