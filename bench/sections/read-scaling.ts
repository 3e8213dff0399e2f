/**
 * Read scaling (issue 27, item 5): does a second node serving reads add capacity? KV v2 reads of a
 * small secret, with a token of a non-root policy (so the ACL path runs), at a fixed number of
 * connections, through:
 *  - `gateway`: the gateway as shipped (every request to the active);
 *  - `gateway-spread`: a second gateway with LEADERWAY_GATEWAY_READ_ROUTING=spread — only when the
 *    gateway's config schema has that key (SPREAD_ENV; otherwise skipped and said so);
 *  - `haproxy-rr`: HAProxy round-robin over the active and one standby, both health-checked with
 *    `sys/health?standbyok=true` (standby reads on, the nodes' default): the anchor an operator
 *    would otherwise use;
 *  - `haproxy-active`: the cluster's HAProxy, only the active passing `sys/health`;
 *  - `direct-active` / `direct-standby`: TLS straight to one node, for CPU per read on each;
 *  - `direct-both`: half the connections straight to each (no proxy on the cores): the scaling
 *    the two nodes themselves allow on this machine.
 * Exactly two nodes serve: the third is stopped for the section (a spread gateway would send it
 * reads too) and started again at the end. The active is pinned to core 0 and the standby to
 * core 1 (taskset, every thread); the load generator (this process), the gateways, both HAProxies
 * and Redis float. Every load accounts each process's CPU time, the load
 * generator's, everything else on the machine's, and each core's busy time, so where the cores
 * went is on record. Pins are undone at the end: later sections see the cluster as before.
 */
import { availableParallelism, loadavg } from 'node:os';
import { gatewaySchema } from '../../shared/config/gateway-schema';
import { freePort } from '../../test/helpers/ports';
import { canPin, pin } from '../lib/affinity';
import { type BenchNode, until } from '../lib/cluster';
import { clusterWatch, type SectionContext } from '../lib/context';
import { type HAProxy, STANDBY_OK_CHECK, startHAProxy } from '../lib/haproxy';
import { call, tryCall } from '../lib/http';
import { type LoadResult, type LoadSpec, runLoad } from '../lib/load';
import { coreBusyMs, cpuMeter, machineBusyMs, quiesce } from '../lib/proc-stats';

export const READ_TARGETS = [
  'gateway',
  'gateway-spread',
  'haproxy-rr',
  'haproxy-active',
  'direct-active',
  'direct-standby',
  'direct-both',
] as const;
export type ReadTarget = (typeof READ_TARGETS)[number];

/** One measured load. */
export interface ReadScalingRun {
  round: number;
  target: ReadTarget;
  result: LoadResult;
  /** Successful reads in the window. */
  reads: number;
  wallMs: number;
  /**
   * CPU milliseconds in the window: each process of the cluster, `load generator` (this process:
   * autocannon and the meters) and `other` (everything else on the machine).
   */
  cpuMs: Record<string, number>;
  /** Busy milliseconds of each core in the window. */
  coreBusyMs: number[];
  /** What the serving standby's leaderway_standby_reads_total counted in the window. */
  standbyReads?: { served: number; forwarded: number };
}

export interface ReadScalingResult {
  active: string;
  standby: string;
  /** The third node, stopped for the section so that exactly two nodes serve. */
  stopped: string;
  /** Process → the cores it may run on (`any`: not pinned). */
  pinning: Record<string, string>;
  connections: number;
  warmupS: number;
  durationS: number;
  rounds: number;
  valueBytes: number;
  policy: string;
  spread: { available: boolean; note: string };
  haproxyRrConfig: string;
  /** 1-minute load average when the section started and ended. */
  loadavg: { start: number; end: number };
  runs: ReadScalingRun[];
}

/** The gateway setting that turns spread routing on, and the environment the spread gateway gets. */
export const SPREAD_ENV_KEY = 'LEADERWAY_GATEWAY_READ_ROUTING';
const SPREAD_ENV: Record<string, string> = { [SPREAD_ENV_KEY]: 'spread' };

/** The secret read: small, so the figures are the per-request cost, not the bytes. */
const VALUE_BYTES = 128;
const SECRET_PATH = '/v1/secret/data/bench/read-scaling';
const POLICY_NAME = 'bench-reader';
const POLICY = 'path "secret/data/bench/*" {\n  capabilities = ["read"]\n}\n';
/** Enough requests in flight to keep two nodes busy through one proxy (25 each under round-robin). */
const CONNECTIONS = 50;

/** A full run stays within ~3 minutes (6–7 targets × 3 rounds × ~7.5 s), a quick one within ~45 s. */
function plan(quick: boolean) {
  return quick
    ? { rounds: 1, warmupS: 1, durationS: 3, primeS: 1 }
    : { rounds: 3, warmupS: 1, durationS: 5, primeS: 2 };
}

/** Whether this build's gateway has the read-routing setting (its config schema names the env). */
export function gatewaySupportsSpread(schema: unknown = gatewaySchema): boolean {
  const walk = (v: unknown): boolean => {
    if (!v || typeof v !== 'object') return false;
    const o = v as Record<string, unknown>;
    return o.env === SPREAD_ENV_KEY || Object.values(o).some(walk);
  };
  return walk(schema);
}

/** `leaderway_standby_reads_total` by outcome, from a node's metrics listener (undefined: none). */
async function standbyReadCounts(n: BenchNode): Promise<{ served: number; forwarded: number } | undefined> {
  if (!n.metricsUrl) return undefined;
  const r = await tryCall(n.metricsUrl, '/metrics');
  if (r?.status !== 200) return undefined;
  const count = (outcome: string) => {
    const m = new RegExp(
      `^leaderway_standby_reads_total\\{[^}]*outcome="${outcome}"[^}]*\\} (\\S+)`,
      'm',
    ).exec(r.text);
    return m ? Number(m[1]) : 0;
  };
  return { served: count('served'), forwarded: count('forwarded') };
}

/** Writes the secret, the policy, and a token of that policy only; returns the token. */
async function seed(active: BenchNode, root: string): Promise<string> {
  const must = async (what: string, p: Promise<{ status: number; text: string }>) => {
    const r = await p;
    if (r.status >= 300) throw new Error(`read-scaling: ${what}: ${r.status} ${r.text.slice(0, 200)}`);
    return r;
  };
  await must(
    'writing the secret',
    call(active.apiUrl, SECRET_PATH, { token: root, body: { data: { v: 'x'.repeat(VALUE_BYTES) } } }),
  );
  await must(
    'writing the policy',
    call(active.apiUrl, `/v1/sys/policies/acl/${POLICY_NAME}`, {
      method: 'PUT',
      token: root,
      body: { policy: POLICY },
    }),
  );
  const t = await must(
    'creating the token',
    call(active.apiUrl, '/v1/auth/token/create', {
      token: root,
      body: { policies: [POLICY_NAME], no_default_policy: true, ttl: '2h' },
    }),
  );
  return (JSON.parse(t.text) as { auth: { client_token: string } }).auth.client_token;
}

/** A round-robin HAProxy over the active and the serving standby, both UP. */
async function startRoundRobin(ctx: SectionContext, active: BenchNode, standby: BenchNode): Promise<HAProxy> {
  const hp = await startHAProxy({
    dir: ctx.cluster.dir,
    port: await freePort(),
    tag: 'haproxy-rr',
    healthCheck: STANDBY_OK_CHECK,
    servers: [active, standby].map((n) => ({ name: n.name, port: n.port })),
  });
  try {
    await until(async () => {
      const s = await hp.serverStates();
      return s[active.name] === 'UP' && s[standby.name] === 'UP';
    }, 'the round-robin HAProxy with both servers UP');
  } catch (err) {
    await hp.stop();
    throw err;
  }
  return hp;
}

/** One load, with every process's and every core's time over exactly its window. */
async function measure(
  spec: LoadSpec,
  procs: Record<string, number | undefined>,
  ours: () => number[],
  standby: BenchNode,
): Promise<Omit<ReadScalingRun, 'round' | 'target'>> {
  await quiesce(ours());
  const sb0 = await standbyReadCounts(standby);
  const cpu = cpuMeter(procs);
  const cores0 = coreBusyMs();
  const busy0 = machineBusyMs();
  const self0 = process.cpuUsage();
  const t0 = performance.now();
  const result = await runLoad(spec, { cpu: procs, ours, noQuiesce: true });
  const wallMs = performance.now() - t0;
  const self = process.cpuUsage(self0);
  const busy = machineBusyMs() - busy0;
  const cores1 = coreBusyMs();
  const cpuMsOut = cpu.stop();
  const sb1 = await standbyReadCounts(standby);
  cpuMsOut['load generator'] = (self.user + self.system) / 1000;
  const ourMs = Object.values(cpuMsOut).reduce((s, x) => s + (Number.isNaN(x) ? 0 : x), 0);
  cpuMsOut.other = Math.max(0, busy - ourMs);
  return {
    result,
    reads: Math.round(result.rps * result.durationS),
    wallMs,
    cpuMs: cpuMsOut,
    coreBusyMs: cores1.map((x, i) => x - (cores0[i] ?? 0)),
    standbyReads:
      sb0 && sb1 ? { served: sb1.served - sb0.served, forwarded: sb1.forwarded - sb0.forwarded } : undefined,
  };
}

export async function readScalingSection(ctx: SectionContext): Promise<ReadScalingResult> {
  const c = ctx.cluster;
  const p = plan(ctx.quick);
  const load0 = loadavg()[0] ?? Number.NaN;
  const active = await c.settle();
  const [standby, third] = c.standbys(active);
  if (!standby || !third || !c.gateway || !c.haproxy)
    throw new Error('read scaling needs two standbys, the gateway and HAProxy');
  const token = await seed(active, c.token);
  // The standby must serve this read itself, or the section measures forwarding.
  const before = await standbyReadCounts(standby);
  const probe = await call(standby.apiUrl, SECRET_PATH, { token });
  const after = await standbyReadCounts(standby);
  if (probe.status !== 200) throw new Error(`read-scaling: standby read ${probe.status} ${probe.text}`);
  if (before && after && after.served <= before.served)
    throw new Error('read-scaling: the standby forwarded the read (standby reads off?)');

  const spreadAvailable = gatewaySupportsSpread();
  const spreadNote = spreadAvailable
    ? `a second gateway with ${SPREAD_ENV_KEY}=spread`
    : 'spread routing not available in this build';
  if (!spreadAvailable) ctx.log(`read-scaling: ${spreadNote}`);

  // Two nodes serving: the third leaves (gracefully, so it leaves the membership record too)
  // before the spread gateway starts, and comes back when the section ends.
  await third.proc.stop('SIGTERM');
  const undo: Array<() => void> = [];
  let rr: HAProxy | undefined;
  let spread: Awaited<ReturnType<typeof c.startExtraGateway>> | undefined;
  try {
    rr = await startRoundRobin(ctx, active, standby);
    spread = spreadAvailable ? await c.startExtraGateway('gw-spread', SPREAD_ENV) : undefined;
    const urls: Partial<Record<ReadTarget, string | string[]>> = {
      gateway: c.gatewayUrl,
      'gateway-spread': spread?.url,
      'haproxy-rr': rr.url,
      'haproxy-active': c.haproxy.url,
      'direct-active': active.apiUrl,
      'direct-standby': standby.apiUrl,
      'direct-both': [active.apiUrl, standby.apiUrl],
    };
    const targets = READ_TARGETS.filter((t) => urls[t] !== undefined);
    const procs: Record<string, number | undefined> = {
      active: active.proc.child.pid,
      standby: standby.proc.child.pid,
      gateway: c.gateway.child.pid,
      'gateway-spread': spread?.proc.child.pid,
      haproxy: c.haproxy.pid,
      'haproxy-rr': rr.pid,
      redis: c.redisPid,
    };
    const watch = clusterWatch(c, { 'haproxy-rr': rr.pid, 'gateway-spread': spread?.proc.child.pid });
    const ours = watch.ours ?? (() => c.pids());

    const cores = availableParallelism();
    const pinning: Record<string, string> = {};
    for (const name of Object.keys(procs)) if (procs[name] !== undefined) pinning[name] = 'any';
    pinning['load generator'] = 'any';
    if (cores >= 2 && canPin()) {
      const pins: Array<[string, number | undefined, string]> = [
        ['active', active.proc.child.pid, '0'],
        ['standby', standby.proc.child.pid, '1'],
      ];
      for (const [name, pid, cpus] of pins) {
        if (pid === undefined) continue;
        undo.push(pin(pid, cpus));
        pinning[name] = cpus;
      }
    } else ctx.log(`read-scaling: not pinned (${cores} cores, taskset ${canPin() ? 'present' : 'missing'})`);
    ctx.log(
      `read-scaling: active ${active.name} on core ${pinning.active}, standby ${standby.name} on ${pinning.standby}, ${third.name} stopped; load ${loadavg()
        .map((x) => x.toFixed(2))
        .join(' ')}`,
    );

    const spec = (t: ReadTarget, durationS: number): LoadSpec => ({
      url: urls[t] as string | string[],
      connections: CONNECTIONS,
      durationS,
      method: 'GET',
      path: SECRET_PATH,
      token,
    });
    for (const t of targets) await runLoad(spec(t, p.primeS));

    const runs: ReadScalingRun[] = [];
    for (let round = 0; round < p.rounds; round++) {
      const order = targets.map((_, i) => targets[(i + round) % targets.length] as ReadTarget);
      for (const target of order) {
        await runLoad(spec(target, p.warmupS));
        const m = await measure(spec(target, p.durationS), procs, ours, standby);
        runs.push({ round, target, ...m });
        const per = (name: string) => ((m.cpuMs[name] ?? Number.NaN) * 1000) / Math.max(1, m.reads);
        ctx.log(
          `read-scaling ${target} r${round + 1}: ${Math.round(m.result.rps)} reads/s p50 ${m.result.p50} p99 ${m.result.p99} ms, ` +
            `errors ${m.result.errors}; CPU ms/1k active ${per('active').toFixed(0)} standby ${per('standby').toFixed(0)}; ` +
            `cores busy ${m.coreBusyMs.map((x) => `${Math.round((x / m.wallMs) * 100)}%`).join('/')}; ` +
            `standby served ${m.standbyReads?.served ?? '?'} forwarded ${m.standbyReads?.forwarded ?? '?'}`,
        );
      }
    }
    return {
      active: active.name,
      standby: standby.name,
      stopped: third.name,
      pinning,
      connections: CONNECTIONS,
      warmupS: p.warmupS,
      durationS: p.durationS,
      rounds: p.rounds,
      valueBytes: VALUE_BYTES,
      policy: POLICY,
      spread: { available: spreadAvailable, note: spreadNote },
      haproxyRrConfig: rr.config,
      loadavg: { start: load0, end: loadavg()[0] ?? Number.NaN },
      runs,
    };
  } finally {
    for (const u of undo) u();
    await rr?.stop();
    await spread?.proc.stop('SIGKILL');
    await c.restartNode(third);
    await c.settle();
  }
}

/** CPU ms of `name` per 1,000 reads in `run` (NaN when it was not metered). */
export function cpuPer1kReads(run: ReadScalingRun, name: string): number {
  const ms = run.cpuMs[name];
  return ms === undefined || run.reads === 0 ? Number.NaN : (ms * 1000) / run.reads;
}
