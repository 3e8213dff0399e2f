/**
 * The leader advertisement: what the active node writes at `core/leader/<uuid>` so standbys and
 * gateways can reach it. It carries the cluster private key, so it is encrypted with
 * AES-256-GCM under the advertisement key (never the seal key: gateways hold only this key),
 * with the storage path as associated data.
 *
 * Wire format: 0x01 ‖ keyId(4) ‖ aead.seal(JSON). A list of keys rotates: the first encrypts,
 * every key decrypts.
 */

import { keyId, open, seal } from './crypto/aead';
import { LEADER_PREFIX } from './storage/backend';

const FORMAT_VERSION = 0x01;

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
  /** The cluster private key (PKCS#8 DER, base64). */
  key: string;
  /** When the node became active (RFC 3339). */
  active_time: string;
}

/** The storage path of the advertisement for lock value `uuid`. */
export function advertisementPath(uuid: string): string {
  return `${LEADER_PREFIX}${uuid}`;
}

/** Encrypts an advertisement under the first key of `keys`. */
export function encodeAdvertisement(ad: Advertisement, keys: readonly Buffer[]): Buffer {
  const key = keys[0];
  if (!key) throw new Error('no advertisement key');
  const body = seal(key, Buffer.from(JSON.stringify(ad), 'utf8'), advertisementPath(ad.uuid));
  return Buffer.concat([Buffer.from([FORMAT_VERSION]), keyId(key), body]);
}

/** Why an advertisement was rejected (a metric label; never contains the data). */
export type RejectReason = 'format' | 'unknown-key' | 'decrypt' | 'schema' | 'uuid-mismatch';

/** Result of decoding: the advertisement, or why it was rejected. */
export type DecodeResult = { ok: true; ad: Advertisement } | { ok: false; reason: RejectReason };

/**
 * Decrypts and validates the advertisement stored at `path`. Anything that does not
 * authenticate under one of `keys`, or whose fields are malformed, or whose uuid does not match
 * its path, is rejected: it must never be trusted.
 */
export function decodeAdvertisement(raw: Buffer, path: string, keys: readonly Buffer[]): DecodeResult {
  if (raw.length < 6 || raw[0] !== FORMAT_VERSION) return { ok: false, reason: 'format' };
  const id = raw.subarray(1, 5);
  const key = keys.find((k) => keyId(k).equals(id));
  if (!key) return { ok: false, reason: 'unknown-key' };
  const plain = open(key, raw.subarray(5), path);
  if (!plain) return { ok: false, reason: 'decrypt' };
  let ad: unknown;
  try {
    ad = JSON.parse(plain.toString('utf8'));
  } catch {
    return { ok: false, reason: 'schema' };
  }
  if (!isAdvertisement(ad)) return { ok: false, reason: 'schema' };
  if (advertisementPath(ad.uuid) !== path) return { ok: false, reason: 'uuid-mismatch' };
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
    typeof a.key === 'string' &&
    typeof a.active_time === 'string'
  );
}
