/**
 * The envelope of the records nodes write for gateways to read — the leader advertisement
 * (./advertisement.ts) and the membership record (./membership.ts): signed with the nodes'
 * Ed25519 signing key over the storage path and every field, then encrypted with AES-256-GCM
 * under the advertisement key with the path as associated data. Whoever holds only the
 * advertisement key (a gateway) can read a record and check that a node wrote it, but cannot
 * write one; a record copied to another path does not open.
 *
 * Wire format: format(1) ‖ keyId(4) ‖ aead.seal(JSON body). Keys rotate as lists: the first
 * encrypts (signs), every one decrypts (verifies).
 */
import { keyId, open, seal } from './crypto/aead';
import { type SigningKey, signWith, type VerifyKey, verifyWith } from './crypto/signing';

/** Why a record was rejected (a metric label; never contains the data). */
export type RejectReason =
  | 'format'
  | 'unknown-key'
  | 'decrypt'
  | 'schema'
  | 'uuid-mismatch'
  | 'unsigned'
  | 'unknown-signer'
  | 'bad-signature';

/** Each reason once (the compiler checks the list is complete). */
const REASONS: Record<RejectReason, true> = {
  format: true,
  'unknown-key': true,
  decrypt: true,
  schema: true,
  'uuid-mismatch': true,
  unsigned: true,
  'unknown-signer': true,
  'bad-signature': true,
};

/**
 * Every reason a record's checks refuse it for, and a watcher's `extra` ones (complete by type):
 * metric labels to export at 0 before any refusal — a counter series that first appears at 1 is
 * no increase to Prometheus, so an alert on refusals would miss the first one.
 */
export function rejectReasons<T extends string>(extra: Record<T, true>): readonly (RejectReason | T)[] {
  return [...(Object.keys(REASONS) as RejectReason[]), ...(Object.keys(extra) as T[])];
}

/** The format byte of the previous, unsigned advertisement (refused as `unsigned` where a signed one is due). */
export const LEGACY_FORMAT = 0x01;

/** One kind of signed record: how it is framed, checked and signed. */
export interface RecordKind<T> {
  /** Its format byte. */
  readonly format: number;
  /** The body field that holds it (`ad`, `m`). */
  readonly field: string;
  /** Whether a decrypted value is well formed. */
  valid(v: unknown): v is T;
  /** Only the known fields: what is signed, returned and compared. */
  only(v: T): T;
  /** The bytes the signature covers: a domain string, the path and every field in a fixed order. */
  signedBytes(path: string, v: T): Buffer;
  /** The path the record must be stored at (its uuid bound to its place). */
  pathOf(v: T): string;
}

/** Encrypts `body` under the first of `keys` for `path`. */
export function encrypt(format: number, path: string, body: unknown, keys: readonly Buffer[]): Buffer {
  const key = keys[0];
  if (!key) throw new Error('no advertisement key');
  const sealed = seal(key, Buffer.from(JSON.stringify(body), 'utf8'), path);
  return Buffer.concat([Buffer.from([format]), keyId(key), sealed]);
}

/** Opens `encrypt`'s envelope: the JSON body, or why it is refused. */
export function decrypt(
  format: number,
  raw: Buffer,
  path: string,
  keys: readonly Buffer[],
): { ok: true; body: unknown } | { ok: false; reason: RejectReason } {
  if (raw.length < 6) return { ok: false, reason: 'format' };
  if (raw[0] !== format) return { ok: false, reason: raw[0] === LEGACY_FORMAT ? 'unsigned' : 'format' };
  const key = keys.find((k) => keyId(k).equals(raw.subarray(1, 5)));
  if (!key) return { ok: false, reason: 'unknown-key' };
  const plain = open(key, raw.subarray(5), path);
  if (!plain) return { ok: false, reason: 'decrypt' };
  try {
    return { ok: true, body: JSON.parse(plain.toString('utf8')) };
  } catch {
    return { ok: false, reason: 'schema' };
  }
}

/** Signs and encrypts a record of `kind` for its path. */
export function encodeSigned<T>(
  kind: RecordKind<T>,
  v: T,
  keys: readonly Buffer[],
  signer: SigningKey,
): Buffer {
  const clean = kind.only(v);
  const path = kind.pathOf(clean);
  const sig = signWith(signer, kind.signedBytes(path, clean));
  const body = { [kind.field]: clean, sig_key: signer.id.toString('hex'), sig: sig.toString('base64') };
  return encrypt(kind.format, path, body, keys);
}

/**
 * Decrypts, verifies and validates the record of `kind` stored at `path`. Anything that does not
 * authenticate under one of `keys`, is not signed by one of `verifyKeys`, has malformed fields
 * or belongs at another path is rejected: it must never be trusted.
 */
export function decodeSigned<T>(
  kind: RecordKind<T>,
  raw: Buffer,
  path: string,
  keys: readonly Buffer[],
  verifyKeys: readonly VerifyKey[],
): { ok: true; value: T } | { ok: false; reason: RejectReason } {
  const d = decrypt(kind.format, raw, path, keys);
  if (!d.ok) return d;
  const body = d.body as Record<string, unknown> | null;
  if (!body || typeof body !== 'object' || !kind.valid(body[kind.field]))
    return { ok: false, reason: 'schema' };
  const { sig, sig_key } = body;
  if (typeof sig !== 'string' || typeof sig_key !== 'string' || !/^[0-9a-f]{8}$/.test(sig_key))
    return { ok: false, reason: 'unsigned' };
  const value = kind.only(body[kind.field] as T);
  const verdict = verifyWith(
    verifyKeys,
    Buffer.from(sig_key, 'hex'),
    kind.signedBytes(path, value),
    Buffer.from(sig, 'base64'),
  );
  if (verdict !== 'ok') return { ok: false, reason: verdict };
  if (kind.pathOf(value) !== path) return { ok: false, reason: 'uuid-mismatch' };
  return { ok: true, value };
}
