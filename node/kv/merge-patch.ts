/**
 * JSON Merge Patch (RFC 7386), as `vault kv patch` and the Go client's `KVv2.Patch` send it:
 * objects merge recursively, `null` removes a member, anything else replaces the target.
 */

function isObject(v: unknown): v is Record<string, unknown> {
  return v !== null && typeof v === 'object' && !Array.isArray(v);
}

/** Applies `patch` to `target` and returns the result (neither argument is modified). */
export function mergePatch(target: unknown, patch: unknown): unknown {
  if (!isObject(patch)) return patch;
  const out: Record<string, unknown> = isObject(target) ? { ...target } : {};
  for (const [k, v] of Object.entries(patch)) {
    if (v === null) delete out[k];
    // A member named `__proto__` (JSON.parse makes it an own property) is data like any other:
    // assigning it would set the object's prototype and lose it.
    else
      Object.defineProperty(out, k, {
        value: mergePatch(Object.hasOwn(out, k) ? out[k] : undefined, v),
        enumerable: true,
        writable: true,
        configurable: true,
      });
  }
  return out;
}
