/**
 * A bounded label for a request path, for metrics and logs: known routes map to themselves
 * (`sys/health`, `secret/data`, ...), everything else to `other`, so no client can blow up
 * metric cardinality with random paths.
 */
const KNOWN = new Set([
  'sys/health',
  'sys/leader',
  'sys/init',
  'sys/seal-status',
  'sys/ha-status',
  'sys/step-down',
  'sys/internal',
  'sys/mounts',
  'auth/token',
  'secret/data',
  'secret/metadata',
  'secret/delete',
  'secret/undelete',
  'secret/destroy',
  'secret/config',
]);

/** `secret/data` for `/v1/secret/data/app?version=2`; `other` for anything unknown. */
export function routeClass(url: string | undefined): string {
  const u = url ?? '/';
  if (!u.startsWith('/v1/')) return 'other';
  // The first two segments after /v1/, up to the query: no split, no intermediate arrays.
  let end = u.indexOf('?', 4);
  if (end === -1) end = u.length;
  const slash = u.indexOf('/', 4);
  if (slash === -1 || slash >= end) return 'other';
  let second = u.indexOf('/', slash + 1);
  if (second === -1 || second > end) second = end;
  const key = u.slice(4, second);
  return KNOWN.has(key) ? key : 'other';
}
