/**
 * Cost growth of the gateway: RSS and latency at 10, 1,000 and 5,000 open client connections
 * (up to 100 of them busy under autocannon, the rest mostly idle keep-alive connections each
 * sending a read every 4 s); and latency against value size from 1 KB to 8 MB, reads and writes,
 * through the gateway and directly, with the gateway's RSS — bodies are streamed, so memory must
 * stay flat as values grow (LEADERWAY_MAX_REQUEST_SIZE defaults to 32 MiB, above 8 MB).
 */
import { clusterWatch, type SectionContext } from '../lib/context';
import { kvBody } from '../lib/http';
import { openIdleClients } from '../lib/idle-clients';
import { type LoadResult, runLoad, type Watch } from '../lib/load';
import { cpuMs, rssMb, tcpActiveOpens } from '../lib/proc-stats';
import { sizeLabel, sleep } from '../lib/stats';
import { PRIME_S, prime, readKey, seedReads, writeKey } from './steady';

/** Busy connections at most; the rest of a level are idle ones. */
const ACTIVE_MAX = 100;
/** An idle connection sends a read this often (inside the gateway's 5 s keep-alive timeout). */
const IDLE_EVERY_MS = 4_000;
/** Connections for the value-size runs. */
const SIZE_CONNECTIONS = 10;

export interface ConnectionLevel {
  total: number;
  active: number;
  idleOpen: number;
  idleDropped: number;
  rssBeforeMb: number;
  result: LoadResult;
}

export interface SizeRow {
  size: number;
  op: 'read' | 'write';
  path: 'gateway' | 'direct';
  result: LoadResult;
}

/** 100 busy connections measured right after 1,000 clients went away with requests in flight. */
export interface AfterDisconnect {
  baseline: LoadResult;
  after: LoadResult;
  /** TCP connections opened during each run beyond the load's own client connections (≈ upstream reconnects). */
  baselineReconnects: number;
  afterReconnects: number;
}

/**
 * A burst of client disconnects (a load balancer timing out, clients cancelling) must not hurt
 * the clients that stay: 1,000 connections load the gateway, all go away at once with requests
 * in flight and queued, and 100 connections are measured at once, against a quiet baseline.
 */
async function massDisconnect(ctx: SectionContext, watch: Watch): Promise<AfterDisconnect> {
  const c = ctx.cluster;
  const spec = { url: c.gatewayUrl, method: 'GET' as const, path: readKey(1024), token: c.token };
  const measured = async (noQuiesce: boolean) => {
    const opens = tcpActiveOpens();
    const result = await runLoad({ ...spec, connections: 100, durationS: 3 }, { ...watch, noQuiesce });
    return { result, reconnects: Math.max(0, tcpActiveOpens() - opens - 100) };
  };
  const baseline = await measured(false);
  await runLoad({ ...spec, connections: 1000, durationS: 2 });
  const after = await measured(true);
  ctx.log(
    `growth after 1,000 clients disconnected: ${Math.round(after.result.rps)} req/s p99 ${after.result.p99} ms ` +
      `(${after.reconnects} reconnects) vs ${Math.round(baseline.result.rps)} req/s p99 ${baseline.result.p99} ms`,
  );
  return {
    baseline: baseline.result,
    after: after.result,
    baselineReconnects: baseline.reconnects,
    afterReconnects: after.reconnects,
  };
}

export interface GrowthResult {
  /** RSS of the freshly started gateway, before any request. */
  rssFreshMb: number;
  /**
   * CPU the fresh gateway uses with no request at all (following the leader, timers), in ms per
   * second: what every request's CPU figure carries on top of the request itself.
   */
  idleCpuMsPerS?: number;
  levels: ConnectionLevel[];
  afterDisconnect: AfterDisconnect;
  sizes: SizeRow[];
  sizeConnections: number;
  durationS: number;
}

/** The fresh gateway's idle CPU: let start-up settle, then sample. */
const IDLE_SETTLE_MS = 2_000;
const IDLE_SAMPLE_MS = 5_000;

export async function growthSection(ctx: SectionContext): Promise<GrowthResult> {
  const c = ctx.cluster;
  if (!c.gateway) throw new Error('cost growth needs the gateway');
  const active = await c.settle();
  // A fresh gateway: RSS must reflect this section's load, not what earlier sections left in
  // the heap (V8 and the allocator keep memory once grown).
  await c.startGateway();
  const gwPid = c.gateway.child.pid as number;
  const rssFreshMb = rssMb(gwPid);
  await sleep(IDLE_SETTLE_MS);
  const idleFrom = cpuMs(gwPid);
  await sleep(IDLE_SAMPLE_MS);
  const idleCpuMsPerS = ((cpuMs(gwPid) - idleFrom) * 1000) / IDLE_SAMPLE_MS;
  ctx.log(`growth: idle gateway ${idleCpuMsPerS.toFixed(1)} ms CPU per second`);
  const KB = 1024;
  const MB = 1024 * KB;
  const totals = ctx.quick ? [10, 1000] : [10, 1000, 5000];
  const sizes = ctx.quick ? [KB, MB] : [KB, 64 * KB, MB, 8 * MB];
  const durationS = ctx.quick ? 2 : 4;
  await seedReads(ctx, active, sizes);
  await prime(c.gatewayUrl, c.token, ctx.quick ? 2 : PRIME_S);
  const watch = clusterWatch(c, { active: active.proc.child.pid });
  const port = Number(new URL(c.gatewayUrl).port);

  const levels: ConnectionLevel[] = [];
  for (const total of totals) {
    const activeConns = Math.min(total, ACTIVE_MAX);
    const idle = await openIdleClients({
      port,
      count: total - activeConns,
      path: readKey(KB),
      token: c.token,
      everyMs: IDLE_EVERY_MS,
    });
    await sleep(500);
    const rssBeforeMb = rssMb(gwPid);
    const spec = {
      url: c.gatewayUrl,
      connections: activeConns,
      method: 'GET' as const,
      path: readKey(KB),
      token: c.token,
    };
    await runLoad({ ...spec, durationS: 1 });
    const result = await runLoad({ ...spec, durationS }, watch);
    levels.push({
      total,
      active: activeConns,
      idleOpen: idle.open(),
      idleDropped: idle.dropped(),
      rssBeforeMb,
      result,
    });
    idle.stop();
    ctx.log(
      `growth ${total} connections: RSS ${Math.round(result.rssMb ?? 0)} MB p50 ${result.p50} ms p99 ${result.p99} ms ` +
        `(${idle.dropped()} idle dropped)`,
    );
    await sleep(500);
  }

  const rows: SizeRow[] = [];
  for (const size of sizes) {
    const body = kvBody(size);
    for (const op of ['read', 'write'] as const) {
      // Quick mode: the gateway only (the direct rows are the reference for latency).
      for (const path of ctx.quick ? (['gateway'] as const) : (['gateway', 'direct'] as const)) {
        const result = await runLoad(
          {
            url: path === 'gateway' ? c.gatewayUrl : active.apiUrl,
            connections: SIZE_CONNECTIONS,
            durationS,
            method: op === 'read' ? 'GET' : 'POST',
            path: op === 'read' ? readKey(size) : (i: number) => writeKey(size, i),
            body: op === 'write' ? body : undefined,
            token: c.token,
            timeoutS: 30,
          },
          watch,
        );
        rows.push({ size, op, path, result });
        ctx.log(
          `growth ${op} ${sizeLabel(size)} ${path}: p50 ${result.p50} ms p99 ${result.p99} ms ` +
            `${result.rps.toFixed(1)} req/s gateway RSS ${Math.round(result.rssMb ?? 0)} MB errors ${result.errors}`,
        );
      }
    }
  }
  // Last: it leaves the gateway's heap grown (hundreds of aborted requests and TLS reconnects).
  const afterDisconnect = await massDisconnect(ctx, watch);
  return {
    rssFreshMb,
    idleCpuMsPerS,
    levels,
    afterDisconnect,
    sizes: rows,
    sizeConnections: SIZE_CONNECTIONS,
    durationS,
  };
}
