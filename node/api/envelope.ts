/** Vault's response envelope for logical (secret/auth) responses. */
import { randomUUID } from 'node:crypto';

/** Wraps `data` the way Vault answers a logical request. */
export function envelope(data: unknown, extra: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    request_id: randomUUID(),
    lease_id: '',
    renewable: false,
    lease_duration: 0,
    data,
    wrap_info: null,
    warnings: null,
    auth: null,
    ...extra,
  };
}
