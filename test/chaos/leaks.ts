/**
 * The leak scan after a chaos run: Redis (keys, values, append-only file; every data server under
 * Sentinel) or PostgreSQL (every row of every table, read with SQL, and every file of both
 * servers' data directories: heap, WAL), every process's log, exported traces and the
 * gateways' /metrics, searched for tokens, secret values and keys.
 */
import { readdirSync, readFileSync, statSync } from 'node:fs';
import * as path from 'node:path';
import { request } from 'undici';
import { advertisementPath, decodeAdvertisement } from '../../shared/advertisement';
import { verifyKeyFromRaw } from '../../shared/crypto/signing';
import { PostgresBackend } from '../../shared/storage/postgres/postgres-backend';
import { leaderIdentityFrom } from '../helpers/cluster';
import type { OtlpReceiver } from '../helpers/otlp-receiver';
import type { PostgresPair } from '../helpers/postgres';
import { type LeakReport, type StoreContents, scanForLeaks } from '../security/leak-scan';
import { SECRET_MARKER } from './clients';
import type { ChaosCluster } from './cluster';

/** The scan's findings and a one-line account of what was scanned. */
export async function leakScan(
  c: ChaosCluster,
  traces: OtlpReceiver | undefined,
): Promise<{ findings: string[]; line: string; report: LeakReport }> {
  const texts: Array<{ name: string; text: string }> = [];
  for (const p of [...c.gateways, ...c.nodes]) {
    if (!p.metricsUrl) continue;
    try {
      const r = await request(`${p.metricsUrl}/metrics`, { signal: AbortSignal.timeout(5_000) });
      const text = await r.body.text();
      if (r.statusCode === 200) texts.push({ name: `/metrics of ${p.name}`, text });
    } catch {
      // No metrics endpoint on this process.
    }
  }
  const secrets = { token: c.token, keys: c.keys, valueMarker: SECRET_MARKER };
  if (c.store.pg) {
    const report = await scanForLeaks(
      { store: postgresContents(c.store.pg), procs: c.all, traces: traces?.raw ?? [], texts },
      secrets,
    );
    return { findings: report.findings, line: summaryLine(report, traces), report };
  }
  const primary = await c.store.primary();
  const report = await scanForLeaks(
    { redisUrl: primary.url, procs: c.all, traces: traces?.raw ?? [], texts },
    secrets,
  );
  // Under Sentinel, every replica's keys and files too.
  for (const server of c.store.servers.filter((x) => x !== primary)) {
    const r = await scanForLeaks({ redisUrl: server.url, procs: [], traces: [] }, secrets);
    report.findings.push(...r.findings.map((f) => `redis :${server.port}: ${f}`));
    report.scanned.redisKeys += r.scanned.redisKeys;
    report.scanned.aofBytes += r.scanned.aofBytes;
  }
  return { findings: report.findings, line: summaryLine(report, traces), report };
}

function summaryLine(report: LeakReport, traces: OtlpReceiver | undefined): string {
  const s = report.scanned;
  const spans = traces?.spans().length ?? 0;
  const traced = traces
    ? spans > 0
      ? `${s.traceBodies} trace exports (${spans} spans)`
      : 'no traces exported (this build exports none: skipped)'
    : 'traces not enabled';
  const store =
    s.storeItems > 0 || s.storeFileBytes > 0
      ? `${s.storeItems} PostgreSQL rows, ${s.storeFileBytes} bytes of its files`
      : `${s.redisKeys} Redis keys, ${s.aofBytes} AOF bytes`;
  return (
    `leak scan: ${report.needles.length} secrets searched in ${store}, ` +
    `${s.logLines} log lines, ${traced}, ${s.texts} /metrics pages: ` +
    (report.findings.length === 0 ? 'nothing found' : `${report.findings.length} FOUND`)
  );
}

/** leaderway's tables (default names); data values are bytea, read raw. */
const DATA_TABLE = 'leaderway_kv';
const HA_TABLE = 'leaderway_ha_locks';

/**
 * What PostgreSQL holds, as an operator with SQL and file access sees it: the data table's paths
 * and raw values, every other table's rows as text, and every file under both servers' data
 * directories (heap and WAL: a value stored in the clear once stays there after it is replaced).
 */
export function postgresContents(pair: Pick<PostgresPair, 'primary' | 'standby'>): StoreContents {
  const get = async (p: string): Promise<Buffer | null> => {
    const [row] = await pair.primary.sql(`SELECT value FROM ${DATA_TABLE} WHERE path = $1`, [p]);
    return (row?.['value'] as Buffer | undefined) ?? null;
  };
  return {
    get,
    async leader(keys) {
      const [lock] = await pair.primary.sql(`SELECT ha_value FROM ${HA_TABLE} WHERE ha_key = 'core/lock'`);
      const uuid = lock?.['ha_value'];
      if (typeof uuid !== 'string') return null;
      const raw = await get(advertisementPath(uuid));
      if (!raw) return null;
      const d = decodeAdvertisement(
        raw,
        advertisementPath(uuid),
        [Buffer.from(keys.adKey, 'base64')],
        [verifyKeyFromRaw(Buffer.from(keys.verifyKey, 'base64'))],
      );
      if (!d.ok) return null;
      // A reader: reads only, never creates or migrates (the nodes own the tables).
      const backend = new PostgresBackend({ url: pair.primary.url, reader: true });
      try {
        return await leaderIdentityFrom(backend, d.ad, keys);
      } finally {
        await backend.close();
      }
    },
    async *items() {
      for (const row of await pair.primary.sql(`SELECT path, value FROM ${DATA_TABLE}`)) {
        const where = `postgres ${DATA_TABLE} row ${String(row['path']).slice(0, 60)}`;
        yield { where, bytes: Buffer.concat([Buffer.from(String(row['path'])), row['value'] as Buffer]) };
      }
      const tables = await pair.primary.sql(
        `SELECT tablename FROM pg_tables WHERE schemaname = 'public' AND tablename <> $1`,
        [DATA_TABLE],
      );
      for (const { tablename } of tables) {
        for (const row of await pair.primary.sql(`SELECT t::text AS r FROM "${String(tablename)}" t`)) {
          yield { where: `postgres table ${String(tablename)}`, bytes: Buffer.from(String(row['r'])) };
        }
      }
      for (const server of [pair.primary, pair.standby]) {
        for (const file of walk(server.dataDir)) {
          let bytes: Buffer;
          try {
            bytes = readFileSync(file);
          } catch {
            continue; // Removed since listed (a recycled WAL segment).
          }
          yield {
            where: `postgres :${server.port} file ${path.relative(server.dataDir, file)}`,
            bytes,
            file: true,
          };
        }
      }
    },
  };
}

function walk(dir: string): string[] {
  const out: string[] = [];
  for (const name of readdirSync(dir)) {
    const p = path.join(dir, name);
    const st = statSync(p, { throwIfNoEntry: false });
    if (st?.isDirectory()) out.push(...walk(p));
    else if (st?.isFile()) out.push(p);
  }
  return out;
}
