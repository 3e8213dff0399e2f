/**
 * The encrypted barrier: every value the node stores passes through here. Values are sealed with
 * AES-256-GCM under the keyring's active term, with the storage path as associated data (so
 * entries cannot be swapped between paths), and the term recorded in each ciphertext so keys can
 * rotate later without rewriting old entries.
 *
 * Entry format: 0x02 ‖ term (uint32 BE) ‖ nonce ‖ ciphertext ‖ tag.
 */
import { createHmac } from 'node:crypto';
import { open, seal, sealText } from '../../shared/crypto/aead';
import { LwError } from '../../shared/errors';

const ENTRY_VERSION = 0x02;
const HEADER_BYTES = 5;

/** One key of the keyring. */
export interface KeyTerm {
  term: number;
  key: Buffer;
}

/** The keyring: all terms (to decrypt), the active one (to encrypt) and the HMAC key. */
export interface Keyring {
  terms: KeyTerm[];
  activeTerm: number;
  /** Keys token lookups (token ids are HMACs, so storage never holds a token or its plain hash). */
  hmacKey: Buffer;
}

/** Seals and opens storage entries under a keyring. */
export class Barrier {
  private readonly byTerm: Map<number, Buffer>;
  private readonly active: KeyTerm;

  constructor(private readonly keyring: Keyring) {
    this.byTerm = new Map(keyring.terms.map((t) => [t.term, t.key]));
    const active = keyring.terms.find((t) => t.term === keyring.activeTerm);
    if (!active) throw new LwError('LW_ERR_CORRUPT', 'keyring has no active term');
    this.active = active;
  }

  /** Encrypts `plaintext` for storage at `path`. */
  seal(path: string, plaintext: Buffer): Buffer {
    return seal(this.active.key, plaintext, path, this.header());
  }

  private header(): Buffer {
    const header = Buffer.alloc(HEADER_BYTES);
    header[0] = ENTRY_VERSION;
    header.writeUInt32BE(this.active.term, 1);
    return header;
  }

  /** `seal` of a text's UTF-8 bytes, encrypted a slice at a time (see aead.ts `sealText`). */
  sealText(path: string, text: string): Buffer {
    return sealText(this.active.key, text, path, this.header());
  }

  /** Decrypts the entry stored at `path`; throws LW_ERR_CORRUPT when it does not authenticate. */
  open(path: string, entry: Buffer): Buffer {
    if (entry.length < HEADER_BYTES || entry[0] !== ENTRY_VERSION) {
      throw new LwError('LW_ERR_CORRUPT', 'storage entry has an unknown format');
    }
    const key = this.byTerm.get(entry.readUInt32BE(1));
    const plain = key ? open(key, entry.subarray(HEADER_BYTES), path) : null;
    if (!plain) throw new LwError('LW_ERR_CORRUPT', 'storage entry failed to authenticate');
    return plain;
  }

  /** A keyed hash (hex) for looking entries up by a secret without storing the secret. */
  hmac(data: string): string {
    return createHmac('sha256', this.keyring.hmacKey).update(data, 'utf8').digest('hex');
  }
}
