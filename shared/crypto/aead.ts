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

/** Characters of a text encrypted at a time by `sealText` (its transient copies are this small). */
const TEXT_SLICE = 1 << 20;

/**
 * `seal` of `text`'s UTF-8 bytes, without holding them: the text is encrypted a slice at a time
 * straight into the one output buffer. A 30 MiB JSON entry costs the output alone, not also its
 * UTF-8 copy and a ciphertext to concatenate (~60 MiB less for the node to collect per write).
 */
export function sealText(key: Buffer, text: string, aad: string, header?: Buffer): Buffer {
  const nonce = randomBytes(NONCE_BYTES);
  const cipher = createCipheriv('aes-256-gcm', key, nonce);
  cipher.setAAD(Buffer.from(aad, 'utf8'));
  const head = header?.length ?? 0;
  const size = Buffer.byteLength(text, 'utf8');
  const out = Buffer.allocUnsafeSlow(head + NONCE_BYTES + size + TAG_BYTES);
  if (header) header.copy(out, 0);
  nonce.copy(out, head);
  let at = head + NONCE_BYTES;
  for (let i = 0; i < text.length; ) {
    let end = Math.min(text.length, i + TEXT_SLICE);
    // Never split a surrogate pair: each half alone would encode as U+FFFD.
    const last = text.charCodeAt(end - 1);
    if (end < text.length && last >= 0xd800 && last <= 0xdbff) end--;
    at += cipher.update(text.slice(i, end), 'utf8').copy(out, at);
    i = end;
  }
  // GCM is a stream mode: final() has nothing left over.
  at += cipher.final().copy(out, at);
  if (at !== head + NONCE_BYTES + size) throw new Error('sealText: ciphertext length mismatch');
  cipher.getAuthTag().copy(out, at);
  return out;
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
