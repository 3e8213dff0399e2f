/**
 * One chaos run: start the cluster, watch the store (Redis MONITOR, or PostgreSQL audit
 * triggers: pg-audit.ts), start the clients, run the fault
 * schedule, stop the clients, read the final state, and check history, fencing and logs. Used by
 * `npm run chaos` (run.ts) and by the short run inside `npm test` (chaos.test.ts).
 */
import { randomBytes } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { call } from '../helpers/http';
import { type OtlpReceiver, startOtlpReceiver } from '../helpers/otlp-receiver';
import { type CheckStats, checkHistory } from './checker';
import { type ClientSpec, startClients } from './clients';
import { ChaosCluster } from './cluster';
import { type LogEvidence, logEvidence } from './evidence';
import { FencingWatch } from './fencing-watch';
import { readFinalState } from './final-state';
import { faultRound, History } from './history';
import type { FencingReport } from './lock-monitor';
import { type StandbyReads, StandbyReadsWatch } from './node-metrics';
import { PgFencingAudit } from './pg-audit';
import { checkPolicy, type PolicyStats } from './policy-checker';
import { startPolicyClient } from './policy-client';
import { faultTable, figures, type KindFigures } from './report';
import { rng } from './rng';
import { runSchedule } from './scheduler';
import { type ChaosStore, SENTINEL_REPLICAS, type StoreKind, storeLabel } from './store';
import { checkTokens, type TokenStats } from './token-checker';
import { startTokenClient } from './token-client';

/** Versions kept per key: enough that no version is trimmed during a run, so all can be checked. */
const MAX_VERSIONS = 1_000_000;
/**
 * Clients move to a fresh set of keys every this long. KV metadata lists every version, so a key
 * written for a whole long run would make each write (and the AOF) grow without bound; fresh keys
 * keep every version checkable at a bounded cost.
 */
const KEY_GENERATION_MS = 30_000;
/** Clients keep going this long after the last fault, so its aftermath is in the history. */
const TAIL_MS = 2_000;

export interface ChaosOptions {
  seed: number;
  durationMs: number;
  minFaults: number;
  settleMinMs?: number;
  settleMaxMs?: number;
  keys?: number;
  /** Export traces to a local collector (scanned for secrets afterwards). */
  traces?: boolean;
  /** One Redis (default), a Sentinel topology or PostgreSQL, each with its own faults. */
  store?: StoreKind;
  /** LEADERWAY_REDIS_MIN_REPLICAS for the nodes (default: theirs, `auto`). */
  minReplicas?: number;
  log?: (line: string) => void;
  /** Runs before the cluster is torn down (e.g. a leak scan), with everything still up. */
  beforeStop?: (c: ChaosCluster, traces: OtlpReceiver | undefined) => Promise<void>;
}

export interface ChaosResult {
  seed: number;
  store: StoreKind;
  minReplicas?: number;
  violations: string[];
  faults: number;
  stats: CheckStats;
  tokens: TokenStats;
  policy: PolicyStats;
  /** Reads standbys served themselves and forwarded, from the nodes' metrics (a lower bound). */
  standbyReads: StandbyReads;
  /** Acknowledged KV reads by target (`gw1`, `standby:n2`...), all checked by the history checker. */
  readsByTarget: Record<string, number>;
  figures: KindFigures[];
  fencing: FencingReport;
  evidence: LogEvidence;
  durationMs: number;
  summary: string;
  /** Where the history was written (only when there were violations), for debugging. */
  historyFile?: string;
}

const CLIENTS: ClientSpec[] = [
  { name: 'c1', via: 'gw1' },
  { name: 'c2', via: 'gw1' },
  { name: 'c3', via: 'gw2' },
  { name: 'c4', via: 'gw2' },
  { name: 's1', via: 'standby' },
  { name: 's2', via: 'standby' },
  // Every op to a gateway or node drawn afresh: one client's reads hop across all of them.
  { name: 'a1', via: 'any' },
];

/**
 * Where the fencing evidence comes from, independently of leaderway's code: Redis' MONITOR
 * stream, or PostgreSQL's audit triggers.
 */
interface FencingEvidence {
  start(): Promise<void>;
  /** The report, once the clients stopped and the cluster is healthy. */
  report(): Promise<FencingReport>;
  /** Stops watching (idempotent; also after a failed run). */
  close(): void;
}

function fencingEvidence(store: ChaosStore): FencingEvidence {
  const pg = store.pg;
  if (pg) {
    const audit = new PgFencingAudit(() => pg.primary);
    return { start: () => audit.start(), report: () => audit.stop(), close: () => undefined };
  }
  const watch = new FencingWatch(store.servers.map((s) => s.port));
  return { start: () => watch.start(), report: async () => watch.stop(), close: () => void watch.stop() };
}

export async function runChaos(o: ChaosOptions): Promise<ChaosResult> {
  const log = o.log ?? (() => undefined);
  const t0 = Date.now();
  const r = rng(o.seed);
  const collector = o.traces ? await startOtlpReceiver() : undefined;
  const store = o.store ?? 'single';
  const env: Record<string, string> = collector ? otlpEnv(collector.url) : {};
  if (o.minReplicas !== undefined) env['LEADERWAY_REDIS_MIN_REPLICAS'] = String(o.minReplicas);
  const cluster = new ChaosCluster({ env, store });
  const history = new History();
  let monitor: FencingEvidence | undefined;
  const standbyWatch = new StandbyReadsWatch(cluster);
  try {
    await cluster.start();
    monitor = fencingEvidence(cluster.store);
    await monitor.start();
    const run = randomBytes(3).toString('hex');
    const perGen = o.keys ?? 16;
    const gens = Math.ceil(o.durationMs / KEY_GENERATION_MS) + 1;
    const generations = Array.from({ length: gens }, (_, g) =>
      Array.from({ length: perGen }, (_, i) => `chaos-${run}/g${g}/k${i}`),
    );
    // One key's metadata per request, all at once (the keys are independent).
    await Promise.all(
      generations.flat().map(async (k) => {
        const res = await call(cluster.gateways[0]!.url, `/v1/secret/metadata/${k}`, {
          token: cluster.token,
          body: { max_versions: MAX_VERSIONS },
        });
        if (res.status !== 204) throw new Error(`setting max_versions failed: ${res.status} ${res.text}`);
      }),
    );
    log(
      `cluster up (${cluster.nodes.map((n) => n.name).join(', ')}, gw1, gw2; ${storeLabel(store)}); clients start`,
    );
    const started = Date.now();
    const current = () =>
      generations[Math.min(gens - 1, Math.floor((Date.now() - started) / KEY_GENERATION_MS))] as string[];
    standbyWatch.start();
    const clients = startClients(cluster, history, CLIENTS, current, r.fork());
    const tokenClient = await startTokenClient(cluster, history, r.fork());
    const policyClient = await startPolicyClient(cluster, history, r.fork(), `chaos-${run}/policy`);
    let violations: string[];
    try {
      violations = await runSchedule(cluster, history, r.fork(), {
        round: faultRound(store, (o.minReplicas ?? 0) >= SENTINEL_REPLICAS),
        durationMs: o.durationMs,
        minFaults: o.minFaults,
        settleMinMs: o.settleMinMs ?? 1_000,
        settleMaxMs: o.settleMaxMs ?? 3_000,
        log,
      });
      await new Promise((res) => setTimeout(res, TAIL_MS));
    } finally {
      await clients.stop();
      await tokenClient.stop();
      await policyClient.stop();
    }
    await cluster.waitHealthy();
    const state = await readFinalState(cluster.gateways[0]!.url, cluster.token, generations.flat());
    const fencing = await monitor.report();
    const standbyReads = await standbyWatch.stop();
    const readsByTarget: Record<string, number> = {};
    for (const op of history.ops)
      if (op.kind === 'read' && op.outcome === 'ok') readsByTarget[op.via] = (readsByTarget[op.via] ?? 0) + 1;
    const checked = checkHistory(history.ops, state);
    const tokens = checkTokens(history.tokenOps);
    const policy = checkPolicy(history.policyOps);
    const evidence = logEvidence(cluster.all, fencing);
    violations = [
      ...violations,
      ...checked.violations,
      ...tokens.violations.map((v) => `tokens: ${v}`),
      ...policy.violations,
      ...fencing.violations.map((v) => `fencing: ${v}`),
      ...evidence.violations.map((v) => `logs: ${v}`),
      ...cluster.crashes.map(
        (c) => `crash: ${c.name} exited (${c.signal ?? c.code}) unasked:\n  ${c.tail.join('\n  ')}`,
      ),
    ];
    if (fencing.writesChecked === 0)
      violations.push(`fencing: no write was observed by ${evidenceName(store)} (evidence missing)`);
    await o.beforeStop?.(cluster, collector);
    const figs = figures(history.ops, history.faults);
    const result: ChaosResult = {
      seed: o.seed,
      store,
      minReplicas: o.minReplicas,
      violations,
      faults: history.faults.length,
      stats: checked.stats,
      tokens: tokens.stats,
      policy: policy.stats,
      standbyReads,
      readsByTarget,
      figures: figs,
      fencing,
      evidence,
      durationMs: Date.now() - t0,
      summary: '',
    };
    if (violations.length > 0) {
      result.historyFile = path.join(tmpdir(), `leaderway-chaos-${o.seed}-${Date.now()}.json`);
      writeFileSync(
        result.historyFile,
        JSON.stringify({
          seed: o.seed,
          faults: history.faults,
          ops: history.ops,
          tokenOps: history.tokenOps,
          policyOps: history.policyOps,
        }),
      );
    }
    result.summary = summarize(result);
    return result;
  } finally {
    monitor?.close();
    await cluster.stop();
    await collector?.close();
  }
}

/** Environment that makes a leaderway process export its traces (OTLP/JSON, flushed often). */
export function otlpEnv(url: string): Record<string, string> {
  return {
    OTEL_EXPORTER_OTLP_ENDPOINT: url,
    OTEL_EXPORTER_OTLP_PROTOCOL: 'http/json',
    OTEL_BSP_SCHEDULE_DELAY: '500',
  };
}

function summarize(x: ChaosResult): string {
  const s = x.stats;
  const f = x.fencing;
  const gapMs = f.gaps.reduce((a, g) => a + (g.to - g.from), 0);
  const lines = [
    `seed ${x.seed} (${storeLabel(x.store)}${x.minReplicas !== undefined ? `, min replicas ${x.minReplicas}` : ''}): ${x.faults} faults in ${(x.durationMs / 1000).toFixed(0)} s, ${s.ops} operations`,
    '',
    faultTable(x.figures),
    '',
    `operations: ${Object.entries(s.byOutcome)
      .sort()
      .map(([k, n]) => `${k}=${n}`)
      .join(' ')}`,
    `acknowledged writes: ${s.ackedWrites} (verified at their version ${s.verifiedWrites}, hidden by a later delete ${s.hiddenByDelete}, trimmed ${s.trimmed})`,
    `indeterminate writes: ${s.indeterminateWrites} (of which stored ${s.indeterminateStored}); CAS mismatches ${s.casMismatches}; reads checked ${s.readsChecked}; redirects followed ${s.redirected}`,
    `reads by target: ${Object.entries(x.readsByTarget)
      .sort()
      .map(([k, n]) => `${k}=${n}`)
      .join(' ')}`,
    `standby reads (node metrics, lower bound): served ${x.standbyReads.served} (${Object.entries(
      x.standbyReads.servedBy,
    )
      .filter(([, n]) => n > 0)
      .map(([k, n]) => `${k}=${n}`)
      .join(' ')}), forwarded ${x.standbyReads.forwarded}`,
    `tokens: ${x.tokens.tokens} created, ${x.tokens.uses} uses (accepted ${x.tokens.accepted}, refused ${x.tokens.refused}; accepted after a renewal ${x.tokens.acceptedAfterRenewal}), ${x.tokens.revocations} revocations acknowledged; ` +
      `uses sent to nodes directly ${x.tokens.direct} (to standbys ${x.tokens.directStandby}); uses after a revocation ${x.tokens.afterRevocation}, of certainly-live tokens ${x.tokens.mustAccept}`,
    `policy: ${x.policy.changes} changes acknowledged (allow/deny), ${x.policy.reads} reads under it, ${x.policy.checked} with one legitimate answer checked (${x.policy.checkedDirect} sent to nodes directly)`,
    `fencing (${evidenceName(x.store)}): ${f.acquisitions.length} terms, ended by release ${f.ends.released} / expiry ${f.ends.expired} / takeover ${f.ends.takenOver}; ` +
      `${f.writesChecked} writes checked against the live lock (min margin to expiry ${Number.isFinite(f.minExpiryMarginMs) ? f.minExpiryMarginMs.toFixed(0) : '-'} ms), ` +
      `${f.writesUnchecked} unchecked${x.store === 'postgres' ? ' (under the epoch held when the audit began)' : `; ${f.gaps.length} MONITOR gaps (${gapMs} ms)`}`,
    `node logs: writes refused by fencing ${JSON.stringify(x.evidence.fencedRefusals)}; leadership lost ${JSON.stringify(x.evidence.lostReasons)}; epochs not logged ${x.evidence.unloggedEpochs.length}`,
    '',
    x.violations.length === 0
      ? 'violations: none'
      : `VIOLATIONS (${x.violations.length}; history in ${x.historyFile}):\n  ${x.violations.slice(0, 50).join('\n  ')}`,
  ];
  return lines.join('\n');
}

/** Where the fencing evidence of a store comes from. */
function evidenceName(store: StoreKind): string {
  return store === 'postgres' ? 'PostgreSQL audit triggers' : 'Redis MONITOR';
}
