/**
 * The token store. A token is never stored: its entry lives at `auth/token/id/<hmac>` (an HMAC
 * under the keyring's key, so Redis holds neither the token nor a plain hash of it), and the
 * entry's own copy of the HMAC is compared in constant time.
 */
import { randomBytes, randomUUID, timingSafeEqual } from 'node:crypto';
import { LwError, MESSAGES } from '../../shared/errors';
import type { SecureStorage } from '../barrier/secure-storage';
import type { AnyRequest } from './request';

const TOKEN_PREFIX = 'hvs.';
const ENTRY_PREFIX = 'auth/token/id/';

/** A stored token entry (what lookup-self shows, minus the hash). */
export interface TokenEntry {
  hash: string;
  accessor: string;
  policies: string[];
  display_name: string;
  creation_time: number;
  meta: Record<string, string> | null;
}

/** Creates a new random token. */
export function newToken(): string {
  return TOKEN_PREFIX + randomBytes(24).toString('base64url');
}

/** The storage entry for the root token created at init. */
export function rootTokenEntry(storage: SecureStorage, token: string): { path: string; value: TokenEntry } {
  const hash = storage.barrier.hmac(token);
  return {
    path: ENTRY_PREFIX + hash,
    value: {
      hash,
      accessor: randomUUID(),
      policies: ['root'],
      display_name: 'root',
      creation_time: Math.floor(Date.now() / 1000),
      meta: null,
    },
  };
}

/** The client token from `X-Vault-Token` or `Authorization: Bearer`, if any. */
export function requestToken(req: AnyRequest): string | undefined {
  const header = req.headers['x-vault-token'];
  if (typeof header === 'string' && header !== '') return header;
  const auth = req.headers.authorization;
  if (typeof auth === 'string') {
    const m = /^Bearer\s+(\S+)\s*$/i.exec(auth);
    if (m) return m[1];
  }
  return undefined;
}

/** Looks a token up; throws 403 "permission denied" when it is missing or unknown. */
export async function authenticate(storage: SecureStorage, token: string | undefined): Promise<TokenEntry> {
  // Reject absurd tokens before hashing; the length limit is not secret.
  if (!token || token.length > 256) throw new LwError('LW_ERR_PERMISSION_DENIED', MESSAGES.permissionDenied);
  const hash = storage.barrier.hmac(token);
  const entry = await storage.get<TokenEntry>(ENTRY_PREFIX + hash);
  const a = Buffer.from(hash, 'hex');
  const b = Buffer.from(entry?.hash ?? '00'.repeat(32), 'hex');
  if (!entry || a.length !== b.length || !timingSafeEqual(a, b)) {
    throw new LwError('LW_ERR_PERMISSION_DENIED', MESSAGES.permissionDenied);
  }
  return entry;
}

/** Whether an entry carries the root policy. */
export function isRoot(entry: TokenEntry): boolean {
  return entry.policies.includes('root');
}
