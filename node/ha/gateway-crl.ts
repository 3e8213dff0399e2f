/**
 * Certificate revocation lists for gateway certificates (`gateway_crl_file`,
 * LEADERWAY_GATEWAY_CRL_FILE): a PEM file of one or more X.509 CRLs (RFC 5280 §5), each signed
 * by a certificate of the gateway CA bundle.
 *
 * Why parse CRLs here rather than hand them to TLS (`crl` in Node's secure context options):
 * Node then makes OpenSSL check revocation for every certificate of every chain
 * (X509_V_FLAG_CRL_CHECK_ALL), and the cluster port also admits standbys, whose certificate is
 * this term's self-signed one, for which no CRL exists: standbys would be refused. Reading the
 * serials ourselves keeps the check to gateways, lets a reload apply to open connections too,
 * and takes a small DER reader: a CRL is a signed list of serial numbers.
 *
 * What is refused (the caller keeps the previous list, or stops the start): a file with no CRL,
 * a CRL that does not parse, one whose issuer is not a certificate of the bundle or whose
 * signature does not verify with that certificate's key, an unknown signature algorithm, and a
 * CRL or entry with a critical extension (a delta CRL, an indirect CRL, a partitioned one: RFC
 * 5280 says a CRL with a critical extension we do not process must not be used).
 */
import { type KeyObject, verify, type X509Certificate } from 'node:crypto';

/** Revoked serial numbers, per issuing certificate of the gateway CA bundle. */
export interface RevocationList {
  /** Key: the issuer's SHA-256 fingerprint (`X509Certificate.fingerprint256`). */
  readonly revoked: ReadonlyMap<string, ReadonlySet<string>>;
  /** One per CRL in the file, for logs. */
  readonly crls: ReadonlyArray<{
    issuer: string;
    entries: number;
    thisUpdate: Date;
    nextUpdate: Date | null;
  }>;
}

/** A DER element: its tag and where its header and contents are. */
interface Tlv {
  tag: number;
  start: number;
  body: number;
  end: number;
}

const SEQUENCE = 0x30;
const INTEGER = 0x02;
const BIT_STRING = 0x03;
const OID = 0x06;
const BOOLEAN = 0x01;
const UTC_TIME = 0x17;
const GENERALIZED_TIME = 0x18;
const EXPLICIT_0 = 0xa0;

/** Signature algorithms (OIDs) we verify, and the digest Node's `verify` takes for each. */
const SIGNATURE_ALGORITHMS: Record<string, string | null> = {
  '1.2.840.10045.4.3.2': 'sha256', // ecdsa-with-SHA256
  '1.2.840.10045.4.3.3': 'sha384',
  '1.2.840.10045.4.3.4': 'sha512',
  '1.2.840.113549.1.1.11': 'sha256', // sha256WithRSAEncryption
  '1.2.840.113549.1.1.12': 'sha384',
  '1.2.840.113549.1.1.13': 'sha512',
  '1.3.101.112': null, // Ed25519
};

function readTlv(buf: Buffer, pos: number, limit: number): Tlv {
  if (pos + 2 > limit) throw new Error('truncated DER');
  const tag = buf[pos] as number;
  if ((tag & 0x1f) === 0x1f) throw new Error('unsupported DER tag');
  let len = buf[pos + 1] as number;
  let body = pos + 2;
  if (len & 0x80) {
    const n = len & 0x7f;
    if (n === 0 || n > 4 || body + n > limit) throw new Error('bad DER length');
    len = 0;
    for (let k = 0; k < n; k++) len = len * 256 + (buf[body++] as number);
  }
  const end = body + len;
  if (end > limit) throw new Error('truncated DER');
  return { tag, start: pos, body, end };
}

function children(buf: Buffer, t: Tlv): Tlv[] {
  const out: Tlv[] = [];
  for (let p = t.body; p < t.end; ) {
    const c = readTlv(buf, p, t.end);
    out.push(c);
    p = c.end;
  }
  return out;
}

function expect(t: Tlv | undefined, tag: number, what: string): Tlv {
  if (!t || t.tag !== tag) throw new Error(`malformed CRL: ${what}`);
  return t;
}

function oidString(buf: Buffer, t: Tlv): string {
  const b = buf.subarray(t.body, t.end);
  const out: number[] = [];
  let v = 0;
  for (const byte of b) {
    v = v * 128 + (byte & 0x7f);
    if (!(byte & 0x80)) {
      if (out.length === 0) out.push(v < 80 ? Math.floor(v / 40) : 2, v < 80 ? v % 40 : v - 80);
      else out.push(v);
      v = 0;
    }
  }
  return out.join('.');
}

function time(buf: Buffer, t: Tlv): Date {
  const s = buf.toString('latin1', t.body, t.end);
  const m =
    t.tag === UTC_TIME
      ? /^(\d{2})(\d{2})(\d{2})(\d{2})(\d{2})(\d{2})Z$/.exec(s)
      : /^(\d{4})(\d{2})(\d{2})(\d{2})(\d{2})(\d{2})Z$/.exec(s);
  if (!m) throw new Error('malformed CRL: time');
  const [, y, mo, d, h, mi, se] = m.map(Number) as number[];
  const year = t.tag === UTC_TIME ? ((y as number) < 50 ? 2000 : 1900) + (y as number) : (y as number);
  return new Date(Date.UTC(year, (mo as number) - 1, d, h, mi, se));
}

/** A serial number as upper-case hex without leading zeros (as X509Certificate's, normalized). */
export function normalizeSerial(hex: string): string {
  return hex.toUpperCase().replace(/^0+(?=.)/, '');
}

/** Refuses a CRL or entry whose extensions include a critical one. */
function refuseCritical(buf: Buffer, extensions: Tlv, where: string): void {
  for (const ext of children(buf, extensions)) {
    const [id, critical] = children(buf, expect(ext, SEQUENCE, 'extension'));
    if (critical?.tag === BOOLEAN && buf[critical.body] !== 0) {
      throw new Error(`${where} has a critical extension ${oidString(buf, expect(id, OID, 'extension'))}`);
    }
  }
}

/** A certificate's subject Name, as DER (to compare with a CRL's issuer byte for byte). */
function subjectDer(cert: X509Certificate): Buffer {
  const raw = cert.raw;
  const [tbs] = children(raw, readTlv(raw, 0, raw.length));
  const fields = children(raw, expect(tbs, SEQUENCE, 'certificate'));
  const at = fields[0]?.tag === EXPLICIT_0 ? 1 : 0; // [0] version is optional
  const subject = expect(fields[at + 4], SEQUENCE, 'certificate subject');
  return raw.subarray(subject.start, subject.end);
}

function verifies(alg: string | null, data: Buffer, key: KeyObject, sig: Buffer): boolean {
  try {
    return verify(alg, data, key, sig);
  } catch {
    return false;
  }
}

/** One DER CRL: its issuer (from `cas`) and revoked serials. Throws an Error saying why not. */
function parseCrl(der: Buffer, cas: readonly X509Certificate[]) {
  const top = readTlv(der, 0, der.length);
  if (top.tag !== SEQUENCE || top.end !== der.length) throw new Error('malformed CRL');
  const [tbs, alg, sig, extra] = children(der, top);
  expect(tbs, SEQUENCE, 'tbsCertList');
  expect(alg, SEQUENCE, 'signatureAlgorithm');
  expect(sig, BIT_STRING, 'signature');
  if (extra || !tbs || !alg || !sig) throw new Error('malformed CRL');
  const f = children(der, tbs);
  let i = 0;
  if (f[i]?.tag === INTEGER) i++; // version (v2); absent in v1
  const innerAlg = expect(f[i++], SEQUENCE, 'signature');
  const issuer = expect(f[i++], SEQUENCE, 'issuer');
  const thisUpdate = time(
    der,
    expect(f[i], f[i]?.tag === GENERALIZED_TIME ? GENERALIZED_TIME : UTC_TIME, 'thisUpdate'),
  );
  i++;
  let nextUpdate: Date | null = null;
  if (f[i]?.tag === UTC_TIME || f[i]?.tag === GENERALIZED_TIME) nextUpdate = time(der, f[i++] as Tlv);
  const serials = new Set<string>();
  if (f[i]?.tag === SEQUENCE) {
    for (const entry of children(der, f[i++] as Tlv)) {
      const [serial, , entryExtensions] = children(der, expect(entry, SEQUENCE, 'revoked entry'));
      const s = expect(serial, INTEGER, 'serial');
      if (entryExtensions) refuseCritical(der, entryExtensions, 'a revoked entry');
      serials.add(normalizeSerial(der.toString('hex', s.body, s.end)));
    }
  }
  if (f[i]?.tag === EXPLICIT_0) {
    const [extensions] = children(der, f[i++] as Tlv);
    refuseCritical(der, expect(extensions, SEQUENCE, 'extensions'), 'the CRL');
  }
  if (i !== f.length) throw new Error('malformed CRL: unexpected field');
  if (!der.subarray(alg.start, alg.end).equals(der.subarray(innerAlg.start, innerAlg.end)))
    throw new Error('malformed CRL: the two signature algorithms differ');
  const oid = oidString(der, expect(children(der, alg)[0], OID, 'algorithm'));
  const digest = SIGNATURE_ALGORITHMS[oid];
  if (digest === undefined) throw new Error(`unsupported CRL signature algorithm ${oid}`);
  if (der[sig.body] !== 0) throw new Error('malformed CRL: signature');
  const signature = der.subarray(sig.body + 1, sig.end);
  const signed = der.subarray(tbs.start, tbs.end);
  const issuerDer = der.subarray(issuer.start, issuer.end);
  const ca = cas.find(
    (c) => subjectDer(c).equals(issuerDer) && verifies(digest, signed, c.publicKey, signature),
  );
  if (!ca) throw new Error('a CRL is not signed by a certificate of the gateway CA bundle');
  return { ca, serials, thisUpdate, nextUpdate };
}

/** The DER contents of every `label` PEM block in `text`. */
export function pemBlocks(text: string, label: string): Buffer[] {
  const re = new RegExp(`-----BEGIN ${label}-----([A-Za-z0-9+/=\\s]+)-----END ${label}-----`, 'g');
  return [...text.matchAll(re)].map((m) => Buffer.from((m[1] as string).replace(/\s+/g, ''), 'base64'));
}

/**
 * Parses a PEM file of CRLs and checks each against the gateway CA bundle `cas`. Several CRLs
 * from one issuer are merged. Throws an Error saying what is wrong.
 */
export function parseCrlFile(pem: string, cas: readonly X509Certificate[]): RevocationList {
  const blocks = pemBlocks(pem, 'X509 CRL');
  if (blocks.length === 0) throw new Error('no "-----BEGIN X509 CRL-----" block');
  const revoked = new Map<string, Set<string>>();
  const crls: Array<RevocationList['crls'][number]> = [];
  for (const der of blocks) {
    const c = parseCrl(der, cas);
    const set = revoked.get(c.ca.fingerprint256) ?? new Set<string>();
    for (const s of c.serials) set.add(s);
    revoked.set(c.ca.fingerprint256, set);
    crls.push({
      issuer: c.ca.subject,
      entries: c.serials.size,
      thisUpdate: c.thisUpdate,
      nextUpdate: c.nextUpdate,
    });
  }
  return { revoked, crls };
}
