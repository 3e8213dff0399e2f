/**
 * The leader advertisement: what the active node writes so standbys and gateways can reach it —
 * its addresses and its cluster certificate, never its private key. It is
 *  - signed with the nodes' Ed25519 signing key (LEADERWAY_ADVERTISEMENT_SIGNING_KEY, nodes
 *    only), over the storage path and every field, so whoever reads it — gateways included —
 *    can check a node wrote it but cannot write one;
 *  - encrypted with AES-256-GCM under the advertisement key, with the path as associated data.
 * It lives at `core/leader-signed/<uuid>`. The cluster private key is stored separately, through
 * the barrier (`core/leader-key/<uuid>`), which only unsealed nodes can open: standbys present
 * the leader's own certificate, gateways a certificate of their own.
 *
 * Wire format: 0x02 ‖ keyId(4) ‖ aead.seal(JSON {ad, sig_key, sig}). Keys rotate as lists: the
 * first encrypts (signs), every one decrypts (verifies).
 *
 * The previous format (0x01, at `core/leader/<uuid>`, unsigned and carrying the private key) is
 * still written and read by nodes in legacy mode (LEADERWAY_ADVERTISEMENT_LEGACY), for a rolling
 * upgrade; see docs/runbook.md.
 */

import type { SigningKey, VerifyKey } from './crypto/signing';
import {
  decodeSigned,
  decrypt,
  encodeSigned,
  encrypt,
  LEGACY_FORMAT,
  type RecordKind,
  type RejectReason,
} from './signed-record';
import { LEADER_PREFIX } from './storage/backend';

export type { RejectReason } from './signed-record';

const FORMAT = 0x02;

/** Where signed advertisements live. */
export const SIGNED_LEADER_PREFIX = 'core/leader-signed/';
/** Where the active node keeps its cluster private key (through the barrier: nodes only). */
export const LEADER_KEY_PREFIX = 'core/leader-key/';

/** What the active node advertises. */
export interface Advertisement {
  /** The lock value this node holds; also the cert's CN (`fw-<uuid>`). */
  uuid: string;
  /** The fencing epoch of that lock acquisition. */
  epoch: number;
  node_id: string;
  /** Where clients are redirected: the node's api_addr. */
  api_addr: string;
  /** Where standbys and gateways connect: `https://host:port`. Empty with clustering disabled. */
  cluster_addr: string;
  /** The cluster certificate (DER, base64). */
  cert: string;
  /** When the node became active (RFC 3339). */
  active_time: string;
}

/** The previous format's content: the advertisement and the cluster private key. */
export interface LegacyAdvertisement extends Advertisement {
  /** The cluster private key (PKCS#8 DER, base64). */
  key: string;
}

/** The storage path of the signed advertisement for lock value `uuid`. */
export function advertisementPath(uuid: string): string {
  return `${SIGNED_LEADER_PREFIX}${uuid}`;
}

/** The storage path of the previous format's advertisement. */
export function legacyAdvertisementPath(uuid: string): string {
  return `${LEADER_PREFIX}${uuid}`;
}

/** Result of decoding: the advertisement, or why it was rejected. */
export type DecodeResult<T = Advertisement> = { ok: true; ad: T } | { ok: false; reason: RejectReason };

/** The bytes a signature covers: the path and every field, in a fixed order. */
function signedBytes(path: string, ad: Advertisement): Buffer {
  const fields = [ad.uuid, ad.epoch, ad.node_id, ad.api_addr, ad.cluster_addr, ad.cert, ad.active_time];
  return Buffer.from(`leaderway-advertisement-v2\n${path}\n${JSON.stringify(fields)}`, 'utf8');
}

function only(ad: Advertisement): Advertisement {
  const { uuid, epoch, node_id, api_addr, cluster_addr, cert, active_time } = ad;
  return { uuid, epoch, node_id, api_addr, cluster_addr, cert, active_time };
}

/** The signed advertisement, as a kind of signed record. */
const SIGNED: RecordKind<Advertisement> = {
  format: FORMAT,
  field: 'ad',
  valid: isAdvertisement,
  only,
  signedBytes,
  pathOf: (ad) => advertisementPath(ad.uuid),
};

/** Signs and encrypts an advertisement (for `advertisementPath(ad.uuid)`). */
export function encodeAdvertisement(ad: Advertisement, keys: readonly Buffer[], signer: SigningKey): Buffer {
  return encodeSigned(SIGNED, ad, keys, signer);
}

/**
 * Decrypts, verifies and validates the advertisement stored at `path`. Anything that does not
 * authenticate under one of `keys`, is not signed by one of `verifyKeys`, has malformed fields
 * or names another uuid than its path is rejected: it must never be trusted.
 */
export function decodeAdvertisement(
  raw: Buffer,
  path: string,
  keys: readonly Buffer[],
  verifyKeys: readonly VerifyKey[],
): DecodeResult {
  const d = decodeSigned(SIGNED, raw, path, keys, verifyKeys);
  return d.ok ? { ok: true, ad: d.value } : d;
}

/** The previous format, for legacy mode: encrypted, unsigned, with the private key. */
export function encodeLegacyAdvertisement(ad: LegacyAdvertisement, keys: readonly Buffer[]): Buffer {
  return encrypt(LEGACY_FORMAT, legacyAdvertisementPath(ad.uuid), ad, keys);
}

/** Decodes the previous format (legacy mode only: nothing authenticates it but the key). */
export function decodeLegacyAdvertisement(
  raw: Buffer,
  path: string,
  keys: readonly Buffer[],
): DecodeResult<LegacyAdvertisement> {
  const d = decrypt(LEGACY_FORMAT, raw, path, keys);
  if (!d.ok) return d.reason === 'unsigned' ? { ok: false, reason: 'format' } : d;
  const ad = d.body as LegacyAdvertisement;
  if (!isAdvertisement(ad) || typeof ad.key !== 'string') return { ok: false, reason: 'schema' };
  if (legacyAdvertisementPath(ad.uuid) !== path) return { ok: false, reason: 'uuid-mismatch' };
  return { ok: true, ad };
}

function isAdvertisement(v: unknown): v is Advertisement {
  const a = v as Record<string, unknown> | null;
  return (
    typeof a === 'object' &&
    a !== null &&
    typeof a.uuid === 'string' &&
    /^[0-9a-f-]{36}$/.test(a.uuid) &&
    Number.isSafeInteger(a.epoch) &&
    (a.epoch as number) > 0 &&
    typeof a.node_id === 'string' &&
    typeof a.api_addr === 'string' &&
    typeof a.cluster_addr === 'string' &&
    (a.cluster_addr === '' || /^https:\/\/[^/]+$/.test(a.cluster_addr)) &&
    typeof a.cert === 'string' &&
    typeof a.active_time === 'string'
  );
}
