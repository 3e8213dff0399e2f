/**
 * BENCHMARKS.md block for issue 13's replication section (sections/replication.ts); its target is
 * evaluated with the others in ./targets.ts.
 */
import { PG_CONFIGS, type ReplicationResult, WRITE_CONFIGS, type WriteConfig } from '../sections/replication';
import { metaLine, table } from './markdown';
import type { Measured } from './results';
import { fmt, median, ratio } from './stats';

const LABEL: Record<WriteConfig, string> = {
  single: 'one Redis (no WAIT)',
  'sentinel-no-wait': 'Sentinel, LEADERWAY_REDIS_MIN_REPLICAS=0 (no WAIT)',
  'sentinel-wait': 'Sentinel, WAIT for 1 replica (default)',
  pg: 'PostgreSQL alone',
  'pg-async': 'PostgreSQL + asynchronous standby',
  'pg-sync': 'PostgreSQL + synchronous standby (synchronous_commit=on)',
};

/** What each row is compared with when no replica confirms its writes. */
const UNCONFIRMED: Record<WriteConfig, WriteConfig> = {
  single: 'sentinel-no-wait',
  'sentinel-no-wait': 'sentinel-no-wait',
  'sentinel-wait': 'sentinel-no-wait',
  pg: 'pg',
  'pg-async': 'pg',
  'pg-sync': 'pg',
};

function writeMedians(d: ReplicationResult, config: WriteConfig) {
  const rs = d.writes.filter((w) => w.config === config).map((w) => w.result);
  return {
    rounds: rs.length,
    rps: median(rs.map((r) => r.rps)),
    p50: median(rs.map((r) => r.p50)),
    p99: median(rs.map((r) => r.p99)),
    cpu: median(rs.map((r) => r.cpuPer1k['node'] ?? Number.NaN)),
    errors: rs.reduce((n, r) => n + r.errors, 0),
  };
}

/** The SQL-alone loads of one PostgreSQL topology (sql-load.ts): medians over the rounds. */
function sqlMedians(d: ReplicationResult, config: WriteConfig, shape: 'fenced' | 'single') {
  const rs = d.writes
    .filter((w) => w.config === config)
    .flatMap((w) => w.sql ?? [])
    .filter((q) => q.shape === shape);
  return {
    tps: median(rs.map((q) => q.tps)),
    p50: median(rs.map((q) => q.p50)),
    p99: median(rs.map((q) => q.p99)),
    errors: rs.reduce((n, q) => n + q.errors, 0),
  };
}

/** The PostgreSQL rows' second table: leaderway against the database alone. */
function pgTable(d: ReplicationResult): string[] {
  const measured = PG_CONFIGS.filter((c) => d.writes.some((w) => w.config === c && w.sql));
  if (!measured.length) return [];
  const rows = measured.map((c) => {
    const w = writeMedians(d, c);
    const fenced = sqlMedians(d, c, 'fenced');
    const single = sqlMedians(d, c, 'single');
    const wal = median(d.writes.filter((x) => x.config === c).map((x) => x.walBytesPerWrite ?? Number.NaN));
    return [
      LABEL[c],
      fmt(w.rps),
      fmt(w.p50),
      fmt(fenced.tps),
      fmt(fenced.p50),
      fmt(fenced.p99),
      fmt(single.tps),
      fmt(single.p50),
      fmt(ratio(w.rps, fenced.tps)),
      fmt(wal),
    ];
  });
  const cost = (c: WriteConfig, from: WriteConfig, p50: (x: WriteConfig) => number) => {
    const diff = p50(c) - p50(from);
    return `${diff < 0 ? '−' : '+'}${fmt(Math.abs(diff))}`;
  };
  const lwP50 = (c: WriteConfig) => writeMedians(d, c).p50;
  const sqlP50 = (c: WriteConfig) => sqlMedians(d, c, 'fenced').p50;
  const perWrite: Record<string, number[]> = {};
  for (const w of d.writes)
    for (const [k, n] of Object.entries(w.statementsPerWrite ?? {}))
      perWrite[k] = [...(perWrite[k] ?? []), n];
  const statements = Object.entries(perWrite)
    .map(([k, ns]) => [k, median(ns)] as const)
    .sort((a, b) => b[1] - a[1]);
  const total = statements.reduce((n, [, x]) => n + x, 0);
  return [
    ...(statements.length
      ? [
          '',
          `Statements PostgreSQL ran per acknowledged KV write (PostgreSQL alone, pg_stat_statements over the load, median of the rounds; lock renewals included): ${fmt(total)} in all — ${statements
            .map(([k, x]) => `${k} ${fmt(x)}`)
            .join(', ')}.`,
        ]
      : []),
    '',
    `The same PostgreSQL servers loaded without leaderway right after each leaderway load (${d.writes[0]?.connections ?? '?'} connections from the bench, each writing its own 1 KB row): "fenced" is leaderway's write transaction for one put (three round trips: BEGIN sent together with the fence SELECT ... FOR SHARE, the upsert, COMMIT; a KV v2 write whose key has more than max_versions versions adds a DELETE, sent with the upsert), "single" the upsert alone in autocommit. Medians over the rounds; WAL is what the primary wrote per acknowledged KV write.`,
    '',
    table(
      [
        'PostgreSQL',
        'leaderway writes/s',
        'leaderway p50 ms',
        'fenced tx/s (SQL alone)',
        'fenced p50 ms',
        'fenced p99 ms',
        'single upsert/s',
        'single p50 ms',
        'leaderway / fenced tx',
        'WAL bytes per KV write',
      ],
      rows,
    ),
    '',
    `The synchronous standby per write (median p50, synchronous minus asynchronous standby): ${cost('pg-sync', 'pg-async', lwP50)} ms through leaderway, ${cost('pg-sync', 'pg-async', sqlP50)} ms for the fenced transaction alone; against PostgreSQL alone: ${cost('pg-sync', 'pg', lwP50)} ms and ${cost('pg-sync', 'pg', sqlP50)} ms.`,
  ];
}

export function replication(m: Measured<ReplicationResult>): string {
  const d = m.data;
  const base = writeMedians(d, 'single');
  const writes = table(
    [
      'Storage',
      'rounds',
      'writes/s (median)',
      'p50 ms (median)',
      'p99 ms (median)',
      'node CPU ms per 1k writes',
      'errors',
      'vs one Redis',
      'vs no replica confirming (Sentinel without WAIT / PostgreSQL alone)',
    ],
    WRITE_CONFIGS.filter((c) => d.writes.some((w) => w.config === c)).map((c) => {
      const w = writeMedians(d, c);
      return [
        LABEL[c],
        String(w.rounds),
        fmt(w.rps),
        fmt(w.p50),
        fmt(w.p99),
        fmt(w.cpu),
        String(w.errors),
        fmt(ratio(w.rps, base.rps)),
        fmt(ratio(w.rps, writeMedians(d, UNCONFIRMED[c]).rps)),
      ];
    }),
  );
  const kills = table(
    [
      'Kill',
      'failover ms (kill → promoted replica takes writes)',
      'longest request ms',
      'within failover + 1 s',
    ],
    d.kills.map((k) => [
      String(k.kill),
      fmt(k.failoverMs),
      fmt(k.longestMs),
      k.longestMs <= k.failoverMs + 1_000 ? 'yes' : 'no',
    ]),
  );
  const t = d.traffic;
  return [
    metaLine(m.meta),
    '',
    `KV writes of 1 KB straight to the active node, ${d.writes[0]?.connections ?? '?'} connections, alternating rounds:`,
    '',
    writes,
    ...pgTable(d),
    '',
    `kill -9 of the Sentinel primary under 4 clients writing and reading through the gateway (down-after ${d.downAfterMs} ms; the old primary restarts on its AOF and rejoins as a replica):`,
    '',
    kills,
    '',
    `Traffic: ${t.reads} reads (${t.failedReads} failed), ${t.writes} acknowledged writes (${t.failedWrites} failed, ${t.unknown} "outcome unknown"), ${d.lost} acknowledged writes lost.`,
  ].join('\n');
}
