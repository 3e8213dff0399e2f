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
  /** Waits until the Sentinels name a primary other than `old`, and it accepts writes. */
  waitFailover(old: RedisServer, timeoutMs?: number): Promise<RedisServer>;
  /** True when the named primary is one and every replica replicates from it, online. */
  inSync(): Promise<boolean>;
  /** Waits until every live data server replicates from the current primary. */
  waitReplicasSynced(timeoutMs?: number): Promise<void>;
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
    for (let i = 0; i < replicas; i++) servers.push(await startData(i + 1, primaryPort));
    const sentinelPorts = await freePorts(3);
    for (const [i, port] of sentinelPorts.entries()) {
      const conf = path.join(confDir, `sentinel-${i}.conf`);
      writeFileSync(
        conf,
        [
          'sentinel resolve-hostnames no',
          `sentinel monitor ${MASTER_NAME} 127.0.0.1 ${primaryPort} 2`,
          `sentinel down-after-milliseconds ${MASTER_NAME} ${downAfterMs}`,
          `sentinel failover-timeout ${MASTER_NAME} ${Math.max(3000, downAfterMs * 3)}`,
          `sentinel parallel-syncs ${MASTER_NAME} ${replicas}`,
          '',
        ].join('\n'),
      );
      sentinels.push(await startRedis({ port, leadingArgs: [conf, '--sentinel'] }));
    }
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
            const p = await topology.primary();
            if (p === old) return null;
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
