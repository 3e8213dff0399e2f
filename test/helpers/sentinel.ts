/**
 * A real replicated Redis for tests, benchmarks and chaos runs: one primary, `replicas` replicas
 * (`replicaof`), and three Sentinels (`redis-server <conf> --sentinel`) on free loopback ports,
 * with the settings docs/runbook.md recommends: `min-replicas-to-write 1` and
 * `min-replicas-max-lag 10` on every data server (an isolated old primary stops taking writes),
 * quorum 2, and a short `down-after-milliseconds` so a failover takes a couple of seconds.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import Redis from 'ioredis';
import { request } from 'undici';
import { freePorts } from './ports';
import { waitFor } from './procs';
import { type RedisServer, startRedis } from './redis';

export const MASTER_NAME = 'mymaster';

export interface SentinelOptions {
  replicas?: number;
  downAfterMs?: number;
  /** The data servers' `min-replicas-to-write` (0 turns it off). */
  minReplicasToWrite?: number;
  /** Append-only persistence on the data servers (the production setting; off by default). */
  appendonly?: boolean;
  /** The Sentinels' `failover-timeout` (default: 3 × down-after, at least 3 s). */
  failoverTimeoutMs?: number;
  /**
   * How often the Sentinels ask each server for INFO outside a failover (`SENTINEL DEBUG
   * info-period`; Sentinel's default 10 s). Set on every start of a Sentinel (it is not kept in
   * its configuration). Sentinels learn a server's role changes this often — a demoted replica
   * seen as one, a returned old primary demoted — so a shorter one only makes the settling after
   * a failover quicker: the failover itself polls every second whatever this is.
   */
  infoPeriodMs?: number;
}

export interface SentinelTopology {
  /** `redis+sentinel://127.0.0.1:<s1>,127.0.0.1:<s2>,127.0.0.1:<s3>/mymaster`. */
  readonly url: string;
  /** The data servers, the first one the initial primary. */
  readonly servers: RedisServer[];
  readonly sentinels: RedisServer[];
  readonly downAfterMs: number;
  /** The data server the Sentinels currently name as primary. */
  primary(): Promise<RedisServer>;
  /**
   * Waits until every Sentinel that answers names the same primary, other than `old`, and it
   * accepts writes: the failover as clients see it (the Sentinel running it names the promoted
   * replica up to a second before the others announce it).
   */
  waitFailover(old: RedisServer, timeoutMs?: number): Promise<RedisServer>;
  /** True when the named primary is one and every replica replicates from it, online. */
  inSync(): Promise<boolean>;
  /** Waits until every live data server replicates from the current primary. */
  waitReplicasSynced(timeoutMs?: number): Promise<void>;
  /**
   * Waits until every Sentinel sees every replica as a replica. A Sentinel refreshes a replica's
   * role every 10 s; one that still believes a replica is a primary (it was one recently: a
   * frozen or returned old primary) demotes it again if it is promoted meanwhile — undoing the
   * failover it has not heard of yet (seen with `SENTINEL FAILOVER` right after a SIGSTOP).
   */
  waitSentinelsSettled(timeoutMs?: number): Promise<void>;
  stop(): Promise<void>;
}

async function info(port: number, section: string): Promise<string> {
  const c = new Redis(port, '127.0.0.1', { lazyConnect: true, maxRetriesPerRequest: 0, connectTimeout: 500 });
  c.on('error', () => {});
  try {
    await c.connect();
    return await c.info(section);
  } finally {
    c.disconnect();
  }
}

/** Starts the topology and waits until every replica is in sync and the Sentinels agree. */
export async function startSentinel(o: SentinelOptions = {}): Promise<SentinelTopology> {
  const replicas = o.replicas ?? 2;
  const downAfterMs = o.downAfterMs ?? 1000;
  const minToWrite = o.minReplicasToWrite ?? 1;
  const failoverTimeoutMs = o.failoverTimeoutMs ?? Math.max(3000, downAfterMs * 3);
  const confDir = mkdtempSync(path.join(tmpdir(), 'lw-sentinel-'));
  // A replica that (re)joins syncs at once: the 5 s default delay only batches replicas.
  const dataConf = [
    `min-replicas-to-write ${minToWrite}`,
    'min-replicas-max-lag 10',
    'repl-diskless-sync-delay 0',
  ];
  const appendonly = o.appendonly ?? false;
  const servers: RedisServer[] = [];
  const sentinels: RedisServer[] = [];
  const stopAll = async () => {
    await Promise.all([...sentinels, ...servers].map((s) => s.stop()));
    rmSync(confDir, { recursive: true, force: true });
  };
  // Each data server reads a configuration file, which the Sentinels rewrite (CONFIG REWRITE)
  // when they change its role: a restarted server comes back with the role it last had.
  const startData = async (i: number, replicaOf?: number) => {
    const conf = path.join(confDir, `data-${i}.conf`);
    const lines = replicaOf === undefined ? dataConf : [...dataConf, `replicaof 127.0.0.1 ${replicaOf}`];
    writeFileSync(conf, `${lines.join('\n')}\n`);
    return startRedis({ leadingArgs: [conf], appendonly });
  };
  try {
    servers.push(await startData(0));
    const primaryPort = (servers[0] as RedisServer).port;
    // Started together (the replicas once the primary is up); pushed in order, so the first
    // replica is servers[1] whichever answers first.
    const started = await Promise.allSettled(
      Array.from({ length: replicas }, (_, i) => startData(i + 1, primaryPort)),
    );
    for (const r of started) if (r.status === 'fulfilled') servers.push(r.value);
    const failed = started.find((r) => r.status === 'rejected');
    if (failed) throw failed.reason;
    const sentinelPorts = await freePorts(3);
    const infoPeriod = o.infoPeriodMs;
    const afterStart =
      infoPeriod === undefined
        ? undefined
        : async (s: RedisServer) => {
            await s.cli('SENTINEL', 'DEBUG', 'info-period', String(infoPeriod));
          };
    const confs = sentinelPorts.map((port, i) => {
      const conf = path.join(confDir, `sentinel-${i}.conf`);
      writeFileSync(
        conf,
        [
          'sentinel resolve-hostnames no',
          `sentinel monitor ${MASTER_NAME} 127.0.0.1 ${primaryPort} 2`,
          `sentinel down-after-milliseconds ${MASTER_NAME} ${downAfterMs}`,
          `sentinel failover-timeout ${MASTER_NAME} ${failoverTimeoutMs}`,
          `sentinel parallel-syncs ${MASTER_NAME} ${replicas}`,
          '',
        ].join('\n'),
      );
      return { port, conf };
    });
    const sentinelsStarted = await Promise.allSettled(
      confs.map(({ port, conf }) => startRedis({ port, leadingArgs: [conf, '--sentinel'], afterStart })),
    );
    for (const r of sentinelsStarted) if (r.status === 'fulfilled') sentinels.push(r.value);
    const sentinelFailed = sentinelsStarted.find((r) => r.status === 'rejected');
    if (sentinelFailed) throw sentinelFailed.reason;
    const topology: SentinelTopology = {
      url: `redis+sentinel://${sentinelPorts.map((p) => `127.0.0.1:${p}`).join(',')}/${MASTER_NAME}`,
      servers,
      sentinels,
      downAfterMs,
      async primary() {
        for (const s of sentinels) {
          try {
            const reply = (await s.cli('SENTINEL', 'get-master-addr-by-name', MASTER_NAME)) as
              | [string, string]
              | null;
            const port = Number(reply?.[1]);
            const found = servers.find((x) => x.port === port);
            if (found) return found;
          } catch {
            // That Sentinel is down: ask the next.
          }
        }
        throw new Error('no Sentinel names a primary');
      },
      async waitFailover(old, timeoutMs = 20_000) {
        return waitFor(
          async () => {
            const named = new Set<number>();
            for (const s of sentinels) {
              try {
                const reply = (await s.cli('SENTINEL', 'get-master-addr-by-name', MASTER_NAME)) as
                  | [string, string]
                  | null;
                named.add(Number(reply?.[1]));
              } catch {
                // That Sentinel is down: the others decide.
              }
            }
            const p = servers.find((x) => named.size === 1 && named.has(x.port));
            if (!p || p === old) return null;
            return /role:master/.test(await info(p.port, 'replication')) ? p : null;
          },
          timeoutMs,
          'a Sentinel failover',
          100,
        );
      },
      async inSync() {
        try {
          const p = await topology.primary();
          const text = await info(p.port, 'replication');
          const online = [...text.matchAll(/^slave\d+:.*state=online/gm)].length;
          return /role:master/.test(text) && online >= replicas;
        } catch {
          return false;
        }
      },
      async waitReplicasSynced(timeoutMs = 20_000) {
        await waitFor(() => topology.inSync(), timeoutMs, 'replicas in sync', 100);
      },
      async waitSentinelsSettled(timeoutMs = 20_000) {
        await waitFor(
          async () => {
            for (const s of sentinels) {
              const list = (await s.cli('SENTINEL', 'REPLICAS', MASTER_NAME)) as string[][];
              const roles = list.map((r) => r[r.indexOf('role-reported') + 1]);
              if (roles.length < replicas || roles.some((r) => r !== 'slave')) return false;
            }
            return true;
          },
          timeoutMs,
          'every Sentinel to see the replicas as replicas',
          200,
        );
      },
      stop: stopAll,
    };
    await topology.waitReplicasSynced();
    // Every Sentinel has found the replicas and the other Sentinels (a failover needs a quorum).
    await waitFor(
      async () => {
        for (const s of sentinels) {
          const m = (await s.cli('SENTINEL', 'master', MASTER_NAME)) as string[];
          const field = (k: string) => Number(m[m.indexOf(k) + 1]);
          if (field('num-slaves') < replicas || field('num-other-sentinels') < sentinels.length - 1)
            return false;
        }
        return true;
      },
      20_000,
      'Sentinels aware of each other and the replicas',
      100,
    );
    return topology;
  } catch (err) {
    await stopAll();
    throw err;
  }
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/**
 * A forced failover not done in this long was abandoned by the Sentinel (its failover-timeout
 * is 4 s in the sequence topology): send it again, up to FORCED_FAILOVER_ATTEMPTS times.
 */
const FORCED_FAILOVER_WAIT_MS = 8_000;
const FORCED_FAILOVER_ATTEMPTS = 3;

/** What one failover sequence did: the primaries involved and how long the Sentinels took. */
export interface SequenceResult {
  /** The primary before and the one after. */
  from: RedisServer;
  to: RedisServer;
  /**
   * From the fault (kill, SIGSTOP, SENTINEL FAILOVER) until the Sentinels name a new primary
   * that accepts writes; for back-to-back failovers, the longer of the two.
   */
  failoverMs: number;
  /** When each step happened (`performance.now()`), for diagnostics. */
  marks: Record<string, number>;
}

/**
 * The failover sequences of issue 25, each against the current primary. They return once the
 * Sentinels name a new primary; the caller waits for the replicas (`waitReplicasSynced`) before
 * the next one, as a returning or demoted server rejoins about 10 s later.
 */
export const SEQUENCES = {
  /**
   * kill -9 of the primary; it starts again on its own data (append-only file) `backMs` later,
   * as a restarted pod would, whether or not the Sentinels have promoted a replica by then.
   */
  async killAndReturn(t: SentinelTopology, backMs = 2_500): Promise<SequenceResult> {
    const from = await t.primary();
    const t0 = performance.now();
    await from.kill('SIGKILL');
    const promoted = t.waitFailover(from).then((to) => ({ to, failoverMs: performance.now() - t0 }));
    // Surfaced by the await below; not an unhandled rejection meanwhile.
    promoted.catch(() => {});
    await sleep(backMs);
    await from.start();
    const returned = performance.now();
    const done = await promoted;
    return { from, ...done, marks: { killed: t0, returned, promoted: t0 + done.failoverMs } };
  },

  /** SIGSTOP of the primary until a replica is promoted (past down-after), then SIGCONT. */
  async freezePastDownAfter(t: SentinelTopology): Promise<SequenceResult> {
    const from = await t.primary();
    const t0 = performance.now();
    from.pause();
    try {
      const to = await t.waitFailover(from);
      const promoted = performance.now();
      return { from, to, failoverMs: promoted - t0, marks: { frozen: t0, promoted } };
    } finally {
      from.resume();
    }
  },

  /**
   * `SENTINEL FAILOVER` (the primary is alive and taking writes). A Sentinel can accept it and
   * then abandon it (no replica it deems good enough yet): then it is sent again, and the
   * failover time counts from the first.
   */
  async forcedFailover(t: SentinelTopology): Promise<SequenceResult> {
    const from = await t.primary();
    await t.waitSentinelsSettled();
    const t0 = performance.now();
    const marks: Record<string, number> = { sent: t0 };
    for (let attempt = 1; ; attempt++) {
      await forceFailover(t);
      marks[attempt === 1 ? 'accepted' : `accepted.${attempt}`] = performance.now();
      try {
        const to = await t.waitFailover(from, FORCED_FAILOVER_WAIT_MS);
        const promoted = performance.now();
        return { from, to, failoverMs: promoted - t0, marks: { ...marks, promoted } };
      } catch (err) {
        if (attempt === FORCED_FAILOVER_ATTEMPTS) throw err;
      }
    }
  },

  /**
   * A replica promoted (`SENTINEL FAILOVER`) and demoted again `demoteAfterMs` later by a second
   * one. (With no pause the two are one pause of both failovers' length: Sentinel refuses the
   * second until the first is complete.)
   */
  async promoteAndDemote(t: SentinelTopology, demoteAfterMs = 1_000): Promise<SequenceResult> {
    const first = await SEQUENCES.forcedFailover(t);
    await sleep(demoteAfterMs);
    const second = await SEQUENCES.forcedFailover(t);
    const marks: Record<string, number> = {};
    for (const [k, v] of Object.entries(first.marks)) marks[`first.${k}`] = v;
    for (const [k, v] of Object.entries(second.marks)) marks[`second.${k}`] = v;
    return {
      from: first.from,
      to: second.to,
      failoverMs: Math.max(first.failoverMs, second.failoverMs),
      marks,
    };
  },
} as const;

export type SequenceName = keyof typeof SEQUENCES;

/**
 * Sends `SENTINEL FAILOVER` to a Sentinel, again while it answers INPROG (the previous failover
 * is still being completed) or NOGOODSLAVE (no replica is in sync yet), for up to `timeoutMs`.
 */
export async function forceFailover(t: SentinelTopology, timeoutMs = 15_000): Promise<void> {
  await t.waitSentinelsSettled();
  const deadline = performance.now() + timeoutMs;
  for (let i = 0; ; i++) {
    const s = t.sentinels[i % t.sentinels.length] as RedisServer;
    try {
      await s.cli('SENTINEL', 'FAILOVER', MASTER_NAME);
      return;
    } catch (err) {
      if (performance.now() > deadline) throw err;
      await sleep(100);
    }
  }
}

/** One request of the sequence load, as its client saw it. */
export interface LoadRequest {
  kind: 'write' | 'read';
  key: string;
  /** `performance.now()` at send and at the end of the answer. */
  start: number;
  end: number;
  status: number;
  /** ok: done; unknown: 503 "outcome is unknown" (writes only); failed: anything else. */
  result: 'ok' | 'unknown' | 'failed';
  /** Error text of a failed request (never a token). */
  error?: string;
}

/** What the sequence load saw. */
export interface LoadRecord {
  requests: LoadRequest[];
  /** Per key, the highest value whose write was acknowledged. */
  acked: Map<string, number>;
  /**
   * Acknowledged writes whose version a later acknowledged write was given too: the first one
   * was lost (its version rolled back with a failover) and the version handed out again.
   */
  reusedVersions: string[];
}

/**
 * Writers (each its own key, increasing values) and readers through `base`, until stopped. Every
 * request is recorded with its timing; every acknowledged write's KV version is checked against
 * the versions acknowledged before (a version given twice means an acknowledged write was lost).
 */
export function startSequenceLoad(
  base: string,
  token: string,
  o: { writers?: number; readers?: number; keyPrefix?: string } = {},
): { record: LoadRecord; stop(): Promise<LoadRecord> } {
  const record: LoadRecord = { requests: [], acked: new Map(), reusedVersions: [] };
  const versions = new Map<string, number>();
  const prefix = o.keyPrefix ?? 'seq';
  let running = true;
  const send = async (kind: 'write' | 'read', key: string, n: number) => {
    const start = performance.now();
    let status = 0;
    let text = '';
    try {
      const r = await request(`${base}/v1/secret/data/${key}`, {
        method: kind === 'write' ? 'POST' : 'GET',
        headers: { 'x-vault-token': token, 'content-type': 'application/json' },
        body: kind === 'write' ? JSON.stringify({ data: { n } }) : undefined,
        headersTimeout: 60_000,
        bodyTimeout: 60_000,
      });
      status = r.statusCode;
      text = await r.body.text();
    } catch (err) {
      text = (err as Error).message;
    }
    const end = performance.now();
    const ok = status === 200 || (kind === 'read' && status === 404 && !record.acked.has(key));
    const unknown = kind === 'write' && status === 503 && text.includes('outcome is unknown');
    const req: LoadRequest = {
      kind,
      key,
      start,
      end,
      status,
      result: ok ? 'ok' : unknown ? 'unknown' : 'failed',
    };
    if (req.result === 'failed') req.error = `${status} ${text.slice(0, 160)}`;
    record.requests.push(req);
    if (kind === 'write' && status === 200) {
      record.acked.set(key, n);
      const version = (JSON.parse(text) as { data?: { version?: number } }).data?.version;
      const at = `${key}@${version}`;
      const before = versions.get(at);
      if (before !== undefined)
        record.reusedVersions.push(`${at}: acknowledged for ${before}, then for ${n}`);
      versions.set(at, n);
    }
  };
  const writers = o.writers ?? 4;
  const loops = [
    ...Array.from({ length: writers }, async (_, w) => {
      for (let n = 1; running; n++) await send('write', `${prefix}-${w}`, n);
    }),
    ...Array.from({ length: o.readers ?? 2 }, async (_, r) => {
      while (running) await send('read', `${prefix}-${r % writers}`, 0);
    }),
  ];
  return {
    record,
    async stop() {
      running = false;
      await Promise.all(loops);
      return record;
    },
  };
}
