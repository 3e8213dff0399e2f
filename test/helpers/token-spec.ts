/** A TokenStore spec for unit tests: an ordinary, renewable token with no TTL, changed by `over`. */
import type { TokenSpec } from '../../node/auth/token-store';

export function tokenSpec(over: Partial<TokenSpec> = {}): TokenSpec {
  return {
    policies: [],
    parent: null,
    displayName: 't',
    meta: null,
    ttlS: 0,
    explicitMaxTtlS: 0,
    periodS: 0,
    renewable: true,
    numUses: 0,
    path: 'auth/token/create',
    boundCidrs: [],
    ...over,
  };
}
