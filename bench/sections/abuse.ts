/**
 * The abuse figures, through the gateway, each load alone and then beside an unauthenticated
 * attack, alternating in every round:
 *  - issue 16: a light read load (4 clients, 1 KB secret) beside five concurrent 32 MiB
 *    `PUT sys/init` bodies and 500 slow-body connections; the active node's RSS is sampled.
 *    Targets: the loaded p99 within 2× of the unloaded p99, the active's RSS within 64 MiB of idle.
 *  - issue 29: a legitimate writer (2 clients, each a ~330-byte KV write then an AppRole login)
 *    beside an attacker trickling bodies: 64 bodies of 1 MiB held one byte short from 8
 *    addresses, 20 slow logins and 500 slow bodies. Target: the writer's p99 within 2× alone.
 */
import {
  type AppRoleLogin,
  heldBodies,
  hugeInits,
  legitWrites,
  lightReads,
  quantile,
  rssOf,
  rssPeak,
  slowBodies,
  slowLogins,
} from '../../test/helpers/abuse';
import type { SectionContext } from '../lib/context';
import { call } from '../lib/http';

const MIB = 1024 * 1024;
/** The attacking addresses (loopback aliases), none of them the writer's (127.0.0.1). */
const ATTACKERS = Array.from({ length: 8 }, (_, i) => `127.0.0.${i + 2}`);

/** One round of the issue-29 figure: the writer alone, then beside the trickling attacker. */
export interface WriterRound {
  round: number;
  aloneP99: number;
  besideP99: number;
  requests: { alone: number; beside: number };
  failures: number;
}

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
  /** Absent in results from before issue 29. */
  writers?: WriterRound[];
}

/** An AppRole role for the writer to log in with (the mount may exist from an earlier round). */
async function appRoleLogin(gw: string, token: string): Promise<AppRoleLogin> {
  await call(gw, '/v1/sys/auth/approle', { token, body: { type: 'approle' } });
  await call(gw, '/v1/auth/approle/role/bench-writer', { token, body: { token_policies: 'default' } });
  const roleId = (await call(gw, '/v1/auth/approle/role/bench-writer/role-id', { token })).json<{
    data: { role_id: string };
  }>().data.role_id;
  const secretId = (
    await call(gw, '/v1/auth/approle/role/bench-writer/secret-id', { token, body: {} })
  ).json<{ data: { secret_id: string } }>().data.secret_id;
  return { roleId, secretId };
}

/** The writer alone for `phaseMs`, then beside the attacker trickling bodies. */
async function writerRound(
  gw: string,
  port: number,
  token: string,
  login: AppRoleLogin,
  round: number,
  phaseMs: number,
): Promise<WriterRound> {
  const alone = await legitWrites(gw, token, phaseMs, { login });
  const held = await heldBodies(port, 64, { addresses: ATTACKERS });
  const logins = await slowLogins(port, 20, { localAddress: ATTACKERS[0] });
  const slow = await slowBodies(port, 500);
  const beside = await legitWrites(gw, token, phaseMs, { login });
  held.stop();
  logins.stop();
  await slow.stop();
  return {
    round,
    aloneP99: quantile(alone.latencies, 0.99),
    besideP99: quantile(beside.latencies, 0.99),
    requests: { alone: alone.latencies.length, beside: beside.latencies.length },
    failures: alone.failures.length + beside.failures.length,
  };
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
  const writers: WriterRound[] = [];
  const login = await appRoleLogin(gw, c.token);
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
    const w = await writerRound(gw, port, c.token, login, round, phaseMs);
    writers.push(w);
    ctx.log(
      `abuse round ${round}: writer p99 ${w.aloneP99.toFixed(1)} → ${w.besideP99.toFixed(1)} ms ` +
        `beside 64 × 1 MiB held bodies, 20 slow logins, 500 slow bodies; ${w.failures} failures`,
    );
    await new Promise((res) => setTimeout(res, 2_000));
  }
  return { rounds, writers };
}
