/**
 * A full garbage collection on demand, for the response budget (byte-budget.ts): `global.gc`
 * when the process runs with `--expose-gc`, otherwise the same function taken from a fresh
 * context once the flag is set (V8 exposes `gc` to contexts made after it).
 */
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';

export function fullCollection(): () => void {
  const exposed = (globalThis as { gc?: unknown }).gc;
  if (typeof exposed === 'function') return exposed as () => void;
  setFlagsFromString('--expose-gc');
  const gc: unknown = runInNewContext('gc');
  if (typeof gc !== 'function') throw new Error('V8 did not expose gc()');
  return gc as () => void;
}
