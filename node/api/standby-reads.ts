/**
 * Which requests a standby serves itself (LEADERWAY_DISABLE_STANDBY_READS=false, the default).
 *
 * The route table decides by kind (route.ts, `standbyServes`): reads and lists, unless a route
 * says it needs the active. This module adds what only the request can tell: it carries no body,
 * asks for no response wrapping (which stores a token), does not ask for the active
 * (`X-Vault-Forward: active-node`), and names no term newer than this standby has seen
 * (`X-Vault-Index`, vault-index.ts). What the token needs (a use counted) is checked once it is
 * known, in dispatch; and every write a handler tries on a standby's view is refused before it
 * reaches the store, so the request goes to the active after all.
 */
import { hasBody } from '../../shared/forward/policy';
import type { AnyRequest, ApiRequest } from './request';
import { type IndexKey, requiredEpoch } from './vault-index';
import { requestedWrapTtl } from './wrapping';

/** Whether a standby may try to serve `req` itself (else it forwards it, as with reads off). */
export function standbyMayServe(
  raw: AnyRequest,
  req: ApiRequest,
  key: IndexKey,
  knownEpoch: number,
): boolean {
  if (req.operation !== 'read' && req.operation !== 'list') return false;
  if (hasBody(raw.headers)) return false;
  if (raw.headers['x-vault-forward'] !== undefined) return false;
  if (!noWrapping(raw)) return false;
  // An index we cannot read (or from a term we have not seen) goes to the active, which always
  // satisfies it — even without `X-Vault-Inconsistent: forward-active-node`, where Vault would
  // answer 412: a fresh answer is better than a refusal.
  const required = requiredEpoch(raw, key);
  return required !== null && required <= knownEpoch;
}

/** No `X-Vault-Wrap-TTL`, or `0` (none). A malformed one is the active's to refuse. */
function noWrapping(raw: AnyRequest): boolean {
  try {
    return (requestedWrapTtl(raw) ?? 0) === 0;
  } catch {
    return false;
  }
}
