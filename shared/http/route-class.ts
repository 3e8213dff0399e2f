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
  const end = u.indexOf('?');
  const parts = (end === -1 ? u : u.slice(0, end)).split('/', 4);
  const key = `${parts[2] ?? ''}/${parts[3] ?? ''}`;
  return KNOWN.has(key) ? key : 'other';
}
