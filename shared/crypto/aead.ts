/**
 * AES-256-GCM with associated data: the one encryption primitive of leaderway. The storage path
 * is always the associated data, so a ciphertext moved to another path fails to open.
 */
import { createCipheriv, createDecipheriv, createHash, randomBytes } from 'node:crypto';

const NONCE_BYTES = 12; // GCM's standard nonce size; random nonces are safe for < 2^32 messages per key.
const TAG_BYTES = 16;

/**
 * Encrypts `plaintext`: returns `header` ‖ nonce ‖ ciphertext ‖ tag (the header, if any, is not
 * authenticated: callers put their own format bytes there). One concatenation: a value may be
 * tens of MiB, and each extra copy of it is memory the node holds until the next GC.
 */
export function seal(key: Buffer, plaintext: Buffer, aad: string, header?: Buffer): Buffer {
  const nonce = randomBytes(NONCE_BYTES);
  const cipher = createCipheriv('aes-256-gcm', key, nonce);
  cipher.setAAD(Buffer.from(aad, 'utf8'));
  const body = cipher.update(plaintext);
  const rest = cipher.final();
  return Buffer.concat([...(header ? [header] : []), nonce, body, rest, cipher.getAuthTag()]);
}

/** Decrypts what `seal` produced; null when the key, the associated data or the bytes are wrong. */
export function open(key: Buffer, sealed: Buffer, aad: string): Buffer | null {
  if (sealed.length < NONCE_BYTES + TAG_BYTES) return null;
  try {
    const decipher = createDecipheriv('aes-256-gcm', key, sealed.subarray(0, NONCE_BYTES));
    decipher.setAAD(Buffer.from(aad, 'utf8'));
    decipher.setAuthTag(sealed.subarray(sealed.length - TAG_BYTES));
    const plain = decipher.update(sealed.subarray(NONCE_BYTES, sealed.length - TAG_BYTES));
    const rest = decipher.final();
    // GCM is a stream mode: final() has nothing left, so the plaintext need not be copied again.
    return rest.length === 0 ? plain : Buffer.concat([plain, rest]);
  } catch {
    return null;
  }
}

/** A short, non-secret identifier of a key (first 4 bytes of its SHA-256), for key selection. */
export function keyId(key: Buffer): Buffer {
  return createHash('sha256').update(key).digest().subarray(0, 4);
}
