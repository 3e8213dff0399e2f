/**
 * Scans everything an operator (or an attacker with read access) could see — every Redis key
 * and value, the append-only file on disk, every process's log output, exported traces and
 * /metrics — for secrets in the clear: the root token, written secret values (all carry a
 * marker), the seal key, the advertisement key, the root key and keyring keys unwrapped from
 * storage, and the current leader's cluster private key and certificate.
 */
import { readdirSync, readFileSync, statSync } from 'node:fs';
import * as path from 'node:path';
import { open } from '../../shared/crypto/aead';
import { rawRedis, readLeaderIdentity } from '../helpers/cluster';
import type { Proc, TestKeys } from '../helpers/procs';

/**
 * A store other than Redis (PostgreSQL): what it holds, to scan, and a data path's stored value,
 * to unwrap the root key and keyring from (so they are searched for too).
 */
export interface StoreContents {
  /** A data path's stored value (`core/seal/root-key`), or null. */
  get(path: string): Promise<Buffer | null>;
  /** Every stored row or item, and every file of the store's own, as bytes. */
  items(): AsyncIterable<{ where: string; bytes: Buffer; file?: boolean }>;
  /** The current leader's cluster identity, read from the store (its key is searched for). */
  leader(keys: TestKeys): Promise<LeaderIdentity | null>;
}

type LeaderIdentity = Awaited<ReturnType<typeof readLeaderIdentity>>;

/** Where to look. */
export interface LeakSources {
  /** The Redis to scan (keys, values, append-only file), or none when `store` is given. */
  redisUrl?: string;
  /** Another store to scan instead of Redis. */
  store?: StoreContents;
  procs: Proc[];
  /** Raw OTLP export bodies. */
  traces: Buffer[];
  /** Anything else to scan, e.g. /metrics output. */
  texts?: Array<{ name: string; text: string }>;
}

/** What must never appear. */
export interface Secrets {
  token: string;
  /** The cluster's keys (seal, advertisement, signing, verify). */
  keys: TestKeys;
  /** A prefix carried by every written secret value. */
  valueMarker: string;
  /** More strings that must not appear (e.g. near-miss tokens a client sent). */
  extra?: Array<{ name: string; text: string }>;
}

export interface LeakReport {
  findings: string[];
  scanned: {
    redisKeys: number;
    aofBytes: number;
    /** Rows of another store (`LeakSources.store`), and bytes of its files. */
    storeItems: number;
    storeFileBytes: number;
    logLines: number;
    traceBodies: number;
    texts: number;
  };
  needles: string[];
}

interface Needle {
  name: string;
  bytes: Buffer;
}

/** Runs the scan. Redis (or the store) must be up. */
export async function scanForLeaks(src: LeakSources, s: Secrets): Promise<LeakReport> {
  const report: LeakReport = {
    findings: [],
    scanned: {
      redisKeys: 0,
      aofBytes: 0,
      storeItems: 0,
      storeFileBytes: 0,
      logLines: 0,
      traceBodies: src.traces.length,
      texts: 0,
    },
    needles: [],
  };
  let needles: Needle[] = [];
  const check = (where: string, data: Buffer) => {
    for (const n of needles) if (data.includes(n.bytes)) report.findings.push(`${where} contains ${n.name}`);
  };
  if (src.store) {
    const store = src.store;
    needles = await collectNeedles(
      (p) => store.get(p),
      s,
      () => store.leader(s.keys),
    );
    for await (const item of src.store.items()) {
      if (item.file) report.scanned.storeFileBytes += item.bytes.length;
      else report.scanned.storeItems++;
      check(item.where, item.bytes);
    }
  }
  if (src.redisUrl !== undefined) await scanRedis(src.redisUrl, s, report, check, (n) => (needles = n));
  report.needles = needles.map((n) => n.name);
  const checkText = (where: string, text: string) => check(where, Buffer.from(text, 'utf8'));
  for (const p of src.procs) {
    report.scanned.logLines += p.lines.length;
    checkText(`log of ${p.name}`, p.lines.join('\n'));
  }
  for (const [i, b] of src.traces.entries()) checkText(`trace export #${i}`, b.toString('utf8'));
  for (const t of src.texts ?? []) {
    report.scanned.texts++;
    checkText(t.name, t.text);
  }
  return report;
}

/** Redis' keys, values and files. */
async function scanRedis(
  redisUrl: string,
  s: Secrets,
  report: LeakReport,
  check: (where: string, data: Buffer) => void,
  setNeedles: (n: Needle[]) => void,
): Promise<void> {
  const r = await rawRedis(redisUrl);
  try {
    setNeedles(
      await collectNeedles(
        (p) => r.getBuffer(`{leaderway}/d/${p}`),
        s,
        () => readLeaderIdentity(redisUrl, s.keys),
      ),
    );
    let cursor = '0';
    do {
      const [next, keys] = await r.scanBuffer(cursor, 'COUNT', '500');
      cursor = String(next);
      // Each batch's types, then its values, in one round trip each (not two per key).
      const types = await Promise.all(keys.map((key) => r.type(key)));
      const values = await Promise.all(
        keys.map((key, i) =>
          types[i] === 'string'
            ? r.getBuffer(key).then((v) => [v])
            : types[i] === 'zset'
              ? r.zrangeBuffer(key, '0', '-1')
              : Promise.resolve([Buffer.from(`<${types[i]}>`)]),
        ),
      );
      for (const [i, key] of keys.entries()) {
        report.scanned.redisKeys++;
        check(`redis key name ${key.toString('latin1').slice(0, 60)}`, key);
        for (const v of values[i] ?? [])
          if (v) check(`redis value of ${key.toString('latin1').slice(0, 60)}`, v);
      }
    } while (cursor !== '0');
    const [, dir] = (await r.config('GET', 'dir')) as [string, string];
    for (const file of walk(dir)) {
      const data = readFileSync(file);
      report.scanned.aofBytes += data.length;
      check(`redis file ${path.basename(file)}`, data);
    }
  } finally {
    r.disconnect();
  }
}

/** The secrets, in every form they could leak in (text, base64, hex, raw bytes). */
async function collectNeedles(
  get: (path: string) => Promise<Buffer | null>,
  s: Secrets,
  readLeader: () => Promise<LeaderIdentity | null>,
): Promise<Needle[]> {
  const out: Needle[] = [
    { name: 'the root token', bytes: Buffer.from(s.token) },
    { name: 'a written secret value', bytes: Buffer.from(s.valueMarker) },
    { name: 'a PEM private key', bytes: Buffer.from('PRIVATE KEY-----') },
    ...(s.extra ?? []).map((e) => ({ name: e.name, bytes: Buffer.from(e.text) })),
  ];
  const key = (name: string, raw: Buffer) => {
    out.push({ name: `${name} (base64)`, bytes: Buffer.from(raw.toString('base64')) });
    out.push({ name: `${name} (hex)`, bytes: Buffer.from(raw.toString('hex')) });
    out.push({ name: `${name} (raw bytes)`, bytes: raw });
  };
  const seal = Buffer.from(s.keys.sealKey, 'base64');
  key('the seal key', seal);
  key('the advertisement key', Buffer.from(s.keys.adKey, 'base64'));
  key('the advertisement signing key', Buffer.from(s.keys.signingKey, 'base64'));
  const wrappedRoot = await get('core/seal/root-key');
  const rootKey = wrappedRoot ? open(seal, wrappedRoot.subarray(1), 'core/seal/root-key') : null;
  if (rootKey) {
    key('the root key', rootKey);
    const wrappedRing = await get('core/keyring');
    const ring = wrappedRing ? open(rootKey, wrappedRing.subarray(1), 'core/keyring') : null;
    if (ring) {
      const k = JSON.parse(ring.toString('utf8')) as { terms: Array<{ key: string }>; hmac_key: string };
      for (const [i, t] of k.terms.entries()) key(`keyring term ${i + 1}`, Buffer.from(t.key, 'base64'));
      key('the token HMAC key', Buffer.from(k.hmac_key, 'base64'));
    }
  }
  const leader = await readLeader().catch(() => null);
  if (leader) {
    const der = Buffer.from(leader.key.replace(/-----[^-]+-----|\s/g, ''), 'base64');
    out.push({ name: 'the cluster private key', bytes: Buffer.from(der.toString('base64').slice(0, 64)) });
    out.push({ name: 'the cluster private key (raw DER)', bytes: der.subarray(0, 48) });
    out.push({ name: 'the advertised certificate', bytes: Buffer.from(leader.ad.cert.slice(0, 64)) });
  }
  return out;
}

function walk(dir: string): string[] {
  const out: string[] = [];
  for (const name of readdirSync(dir)) {
    const p = path.join(dir, name);
    if (statSync(p).isDirectory()) out.push(...walk(p));
    else out.push(p);
  }
  return out;
}
