/**
 * Issue 16's abuse figures: a light read load (4 clients, 1 KB secret, through the gateway) alone,
 * then beside five concurrent 32 MiB `PUT sys/init` bodies and 500 slow-body connections through
 * the same gateway; the active node's RSS is sampled throughout. Rounds alternate the two phases.
 * Targets: the loaded p99 within 2× of the unloaded p99, the active's RSS within 64 MiB of idle.
 */
import { hugeInits, lightReads, quantile, rssOf, rssPeak, slowBodies } from '../../test/helpers/abuse';
import type { SectionContext } from '../lib/context';
import { call } from '../lib/http';

const MIB = 1024 * 1024;

export interface AbuseRound {
  round: number;
  unloadedP99: number;
  loadedP99: number;
  reads: { unloaded: number; loaded: number };
  failures: number;
  idleRssMiB: number;
  peakRssMiB: number;
  initStatuses: number[];
}

export interface AbuseResult {
  rounds: AbuseRound[];
}

export async function abuseSection(ctx: SectionContext): Promise<AbuseResult> {
  const c = ctx.cluster;
  const active = await c.settle();
  const pid = active.proc.child.pid as number;
  const gw = c.gatewayUrl;
  const port = Number(new URL(gw).port);
  await call(gw, '/v1/secret/data/abuse-light', { token: c.token, body: { data: { v: 'x'.repeat(1024) } } });
  const path = '/v1/secret/data/abuse-light';
  const rounds: AbuseRound[] = [];
  const n = ctx.quick ? 1 : 3;
  const phaseMs = ctx.quick ? 3_000 : 8_000;
  await lightReads(gw, path, c.token, 2_000);
  for (let round = 0; round < n; round++) {
    const idle = rssOf(pid);
    const unloaded = await lightReads(gw, path, c.token, phaseMs);
    const peak = rssPeak(pid);
    const slow = await slowBodies(port, 500);
    const inits = hugeInits(gw, 5, 32 * MIB);
    const loaded = await lightReads(gw, path, c.token, phaseMs);
    const initResult = await inits.stop();
    await slow.stop();
    const max = peak.stop();
    const r: AbuseRound = {
      round,
      unloadedP99: quantile(unloaded.latencies, 0.99),
      loadedP99: quantile(loaded.latencies, 0.99),
      reads: { unloaded: unloaded.latencies.length, loaded: loaded.latencies.length },
      failures: unloaded.failures.length + loaded.failures.length,
      idleRssMiB: idle / MIB,
      peakRssMiB: max / MIB,
      initStatuses: initResult.statuses,
    };
    rounds.push(r);
    ctx.log(
      `abuse round ${round}: p99 ${r.unloadedP99.toFixed(1)} → ${r.loadedP99.toFixed(1)} ms, ` +
        `active RSS ${r.idleRssMiB.toFixed(0)} → ${r.peakRssMiB.toFixed(0)} MiB, ${r.failures} failures`,
    );
    // Let the slow connections' sockets close before the next unloaded phase.
    await new Promise((res) => setTimeout(res, 2_000));
  }
  return { rounds };
}
