/**
 * What the raw-LIST shim (shared/http/list-method.ts) costs the gateway: KV reads (1 KB, 100
 * connections) through the gateway with the shim (as shipped) and without it (a bench-only
 * preload restores Node's own parser path), alternating, in pairs; each pair's on/off ratio is
 * kept, and the median ratio reported (the machine is shared: absolute rates drift between
 * pairs more than the shim costs). The shim moves every chunk a client
 * sends through JavaScript, so this is its whole price on the hot path. (autocannon cannot send
 * LIST itself, so the load is GET; LIST costs the same framing.)
 */
import * as path from 'node:path';
import { clusterWatch, type SectionContext } from '../lib/context';
import { type LoadResult, runLoad } from '../lib/load';
import { PRIME_S, prime, readKey, seedReads } from './steady';

const NO_SHIM = path.join(__dirname, '..', 'preload', 'no-list-shim.js');

export interface ListShimRun {
  shim: 'on' | 'off';
  op: 'GET';
  result: LoadResult;
}

export interface ListShimResult {
  runs: ListShimRun[];
}

export async function listShimSection(ctx: SectionContext): Promise<ListShimResult> {
  const c = ctx.cluster;
  const active = await c.settle();
  await seedReads(ctx, active, [1024]);
  const rounds = ctx.quick ? 1 : 5;
  const durationS = ctx.quick ? 2 : 5;
  const runs: ListShimRun[] = [];
  try {
    for (let round = 0; round < rounds; round++) {
      // Alternate the order so warm-up and drift do not favour one side.
      const order = round % 2 === 0 ? (['on', 'off'] as const) : (['off', 'on'] as const);
      for (const shim of order) {
        await c.startGateway({}, shim === 'off' ? ['--require', NO_SHIM] : []);
        await prime(c.gatewayUrl, c.token, ctx.quick ? 2 : PRIME_S);
        const result = await runLoad(
          {
            url: c.gatewayUrl,
            connections: 100,
            durationS,
            method: 'GET',
            path: readKey(1024),
            token: c.token,
          },
          clusterWatch(c, { active: active.proc.child.pid }),
        );
        runs.push({ shim, op: 'GET', result });
        ctx.log(`list shim ${shim}: ${Math.round(result.rps)} req/s p99 ${result.p99} ms`);
      }
    }
  } finally {
    await c.startGateway();
    await prime(c.gatewayUrl, c.token, ctx.quick ? 2 : PRIME_S);
  }
  return { runs };
}
