/**
 * Ed25519 keys for signing leader advertisements. Nodes hold the signing key (its 32-byte seed,
 * base64); gateways and nodes hold verify keys (32-byte public keys, base64), so a gateway can
 * check that an advertisement came from a node but cannot make one. A key is named by the
 * first four bytes of the SHA-256 of its public key.
 */
import { createHash, createPrivateKey, createPublicKey, type KeyObject, sign, verify } from 'node:crypto';

/** DER prefixes that wrap a raw Ed25519 seed (PKCS#8) and public key (SPKI). */
const PKCS8_PREFIX = Buffer.from('302e020100300506032b657004220420', 'hex');
const SPKI_PREFIX = Buffer.from('302a300506032b6570032100', 'hex');

/** A signing key with the id of its public half. */
export interface SigningKey {
  key: KeyObject;
  id: Buffer;
  /** The raw public key (what goes in LEADERWAY_ADVERTISEMENT_VERIFY_KEY). */
  publicRaw: Buffer;
}

/** A verify key and its id. */
export interface VerifyKey {
  key: KeyObject;
  id: Buffer;
}

function idOf(publicRaw: Buffer): Buffer {
  return createHash('sha256').update(publicRaw).digest().subarray(0, 4);
}

/** The signing key for a 32-byte seed. Throws on a bad seed. */
export function signingKeyFromSeed(seed: Buffer): SigningKey {
  if (seed.length !== 32) throw new Error('an Ed25519 signing key is 32 bytes');
  const key = createPrivateKey({ key: Buffer.concat([PKCS8_PREFIX, seed]), format: 'der', type: 'pkcs8' });
  const spki = createPublicKey(key).export({ format: 'der', type: 'spki' }) as Buffer;
  const publicRaw = spki.subarray(SPKI_PREFIX.length);
  return { key, id: idOf(publicRaw), publicRaw };
}

/** The verify key for a 32-byte public key. Throws on a bad key. */
export function verifyKeyFromRaw(raw: Buffer): VerifyKey {
  if (raw.length !== 32) throw new Error('an Ed25519 verify key is 32 bytes');
  const key = createPublicKey({ key: Buffer.concat([SPKI_PREFIX, raw]), format: 'der', type: 'spki' });
  return { key, id: idOf(raw) };
}

/** Signs `data`. */
export function signWith(k: SigningKey, data: Buffer): Buffer {
  return sign(null, data, k.key);
}

/** Whether `sig` is a signature of `data` by one of `keys` (the one named `id`). */
export function verifyWith(
  keys: readonly VerifyKey[],
  id: Buffer,
  data: Buffer,
  sig: Buffer,
): 'ok' | 'unknown-signer' | 'bad-signature' {
  const k = keys.find((x) => x.id.equals(id));
  if (!k) return 'unknown-signer';
  try {
    return verify(null, data, k.key, sig) ? 'ok' : 'bad-signature';
  } catch {
    return 'bad-signature';
  }
}
