/**
 * The membership record: which standbys serve reads to gateways, as the active node saw them.
 * Gateways spread reads over them (LEADERWAY_GATEWAY_READ_ROUTING=spread), so it carries the same
 * trust as the advertisement (./advertisement.ts) and uses the same keys:
 *  - signed with the nodes' Ed25519 signing key over the storage path and every field, so a
 *    gateway (which holds only the advertisement key) can check a node wrote it but cannot write
 *    one — it never sends a request to an address and certificate a node did not vouch for;
 *  - encrypted with AES-256-GCM under the advertisement key, with the path as associated data.
 * It lives at `core/members-signed/<uuid>`, `uuid` being the active's lock value, and names that
 * uuid and the active's epoch: a gateway uses only the record of the leader it follows.
 *
 * Each member's certificate is that standby's own (a fresh P-521 key per process, CN
 * `fw-<id>`); a gateway trusts exactly that certificate for that address, as it trusts the
 * advertised one for the active.
 *
 * Wire format (./signed-record.ts): 0x03 ‖ keyId(4) ‖ aead.seal(JSON {m, sig_key, sig}).
 */
import type { SigningKey, VerifyKey } from './crypto/signing';
import { decodeSigned, encodeSigned, type RecordKind, type RejectReason } from './signed-record';

const FORMAT = 0x03;

/** Where membership records live. */
export const MEMBERS_PREFIX = 'core/members-signed/';

/** The storage path of the membership record of the term holding lock value `uuid`. */
export function membershipPath(uuid: string): string {
  return `${MEMBERS_PREFIX}${uuid}`;
}

/** What a standby reports about itself: serving reads, or leaving (shutting down). */
export type MemberStatus = 'serving' | 'draining';

/** One standby that serves gateways. */
export interface Member {
  node_id: string;
  /** Names its certificate: CN and SAN `fw-<id>`. */
  id: string;
  /** Where gateways connect: `https://host:port`. */
  addr: string;
  /** Its certificate (DER, base64): the only one a gateway accepts at `addr`. */
  cert: string;
  status: MemberStatus;
  /** How long before the record was written the active last heard the standby's heartbeat. */
  heartbeat_age_ms: number;
}

/** The active's view of its standbys. */
export interface Membership {
  /** The active's lock value (as in its advertisement). */
  uuid: string;
  /** The active's fencing epoch. */
  epoch: number;
  /** Increases with every record the term writes: a gateway sees whether it is fresh. */
  seq: number;
  members: Member[];
}

/** Result of decoding: the record, or why it was rejected. */
export type MembershipResult = { ok: true; record: Membership } | { ok: false; reason: RejectReason };

/** Past this many members a record is malformed (nobody runs that many standbys). */
const MAX_MEMBERS = 64;

/** The bytes a signature covers: the path and every field, in a fixed order. */
function signedBytes(path: string, m: Membership): Buffer {
  const members = m.members.map((x) => [x.node_id, x.id, x.addr, x.cert, x.status, x.heartbeat_age_ms]);
  const fields = [m.uuid, m.epoch, m.seq, members];
  return Buffer.from(`leaderway-membership-v1\n${path}\n${JSON.stringify(fields)}`, 'utf8');
}

/** Only the known fields (a record is signed and compared as exactly these). */
function only(m: Membership): Membership {
  return {
    uuid: m.uuid,
    epoch: m.epoch,
    seq: m.seq,
    members: m.members.map(({ node_id, id, addr, cert, status, heartbeat_age_ms }) => ({
      node_id,
      id,
      addr,
      cert,
      status,
      heartbeat_age_ms,
    })),
  };
}

/** The membership record, as a kind of signed record (./signed-record.ts). */
const SIGNED: RecordKind<Membership> = {
  format: FORMAT,
  field: 'm',
  valid: isMembership,
  only,
  signedBytes,
  pathOf: (m) => membershipPath(m.uuid),
};

/** Signs and encrypts a membership record (for `membershipPath(m.uuid)`). */
export function encodeMembership(m: Membership, keys: readonly Buffer[], signer: SigningKey): Buffer {
  return encodeSigned(SIGNED, m, keys, signer);
}

/** The record stored at `path`, if it verifies (as `decodeSigned` in ./signed-record.ts). */
export function decodeMembership(
  raw: Buffer,
  path: string,
  keys: readonly Buffer[],
  verifyKeys: readonly VerifyKey[],
): MembershipResult {
  const d = decodeSigned(SIGNED, raw, path, keys, verifyKeys);
  return d.ok ? { ok: true, record: d.value } : d;
}

function isMember(v: unknown): v is Member {
  const a = v as Record<string, unknown> | null;
  return (
    typeof a === 'object' &&
    a !== null &&
    typeof a.node_id === 'string' &&
    typeof a.id === 'string' &&
    /^[0-9a-f-]{36}$/.test(a.id) &&
    typeof a.addr === 'string' &&
    /^https:\/\/[^/]+$/.test(a.addr) &&
    typeof a.cert === 'string' &&
    (a.status === 'serving' || a.status === 'draining') &&
    Number.isSafeInteger(a.heartbeat_age_ms) &&
    (a.heartbeat_age_ms as number) >= 0
  );
}

function isMembership(v: unknown): v is Membership {
  const a = v as Record<string, unknown> | null;
  return (
    typeof a === 'object' &&
    a !== null &&
    typeof a.uuid === 'string' &&
    /^[0-9a-f-]{36}$/.test(a.uuid) &&
    Number.isSafeInteger(a.epoch) &&
    (a.epoch as number) > 0 &&
    Number.isSafeInteger(a.seq) &&
    (a.seq as number) >= 0 &&
    Array.isArray(a.members) &&
    a.members.length <= MAX_MEMBERS &&
    a.members.every(isMember)
  );
}
