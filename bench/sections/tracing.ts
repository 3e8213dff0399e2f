/**
 * Tracing cost: gateway req/s (KV reads, 1 KB, 100 connections) with tracing off
 * (OTEL_SDK_DISABLED=true) and on (OTEL_EXPORTER_OTLP_ENDPOINT at a local sink that answers 200
 * to everything), alternating. The sink counts what arrives: if no span ever reaches it, tracing
 * is not wired in this build and the section says so rather than reporting a meaningless "cost".
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { clusterWatch, type SectionContext } from '../lib/context';
import { type LoadResult, runLoad } from '../lib/load';
import { sleep } from '../lib/stats';
import { PRIME_S, prime, readKey, seedReads } from './steady';

/** How long to wait for the batch exporter's first export after a traced run. */
const EXPORT_WAIT_MS = 8_000;

/**
 * off; on (every request sampled, OTLP http/protobuf, the default); on-json (the same over
 * OTLP http/json); sampled-10% (protobuf, `parentbased_traceidratio` 0.1, the setting the README
 * suggests for busy gateways).
 */
export type TracingMode = 'off' | 'on' | 'on-json' | 'sampled-10%';
export const TRACING_MODES: readonly TracingMode[] = ['off', 'on', 'on-json', 'sampled-10%'];

export interface TracingRun {
  tracing: TracingMode;
  result: LoadResult;
}

export interface TracingResult {
  /** False when no export reached the sink: tracing is not implemented in this build. */
  implemented: boolean;
  exportRequests: number;
  exportBytes: number;
  exportPaths: string[];
  runs: TracingRun[];
}

/** A local OTLP sink that answers 200 to everything and counts what arrives. */
export function startSink(): Promise<{
  url: string;
  stats: { requests: number; bytes: number; paths: Set<string> };
  close(): void;
}> {
  const stats = { requests: 0, bytes: 0, paths: new Set<string>() };
  const server = http.createServer((req, res) => {
    req.on('data', (d: Buffer) => {
      stats.bytes += d.length;
    });
    req.on('end', () => {
      stats.requests++;
      stats.paths.add(`${req.method} ${req.url}`);
      res.writeHead(200, { 'content-type': req.headers['content-type'] ?? 'application/json' }).end();
    });
  });
  return new Promise((resolve) =>
    server.listen(0, '127.0.0.1', () =>
      resolve({
        url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
        stats,
        close: () => server.close(),
      }),
    ),
  );
}

export async function tracingSection(ctx: SectionContext): Promise<TracingResult> {
  const c = ctx.cluster;
  const active = await c.settle();
  await seedReads(ctx, active, [1024]);
  const sink = await startSink();
  const rounds = ctx.quick ? 1 : 3;
  const durationS = ctx.quick ? 2 : 4;
  const on = {
    OTEL_SDK_DISABLED: 'false',
    OTEL_EXPORTER_OTLP_ENDPOINT: sink.url,
    OTEL_SERVICE_NAME: 'leaderway-gateway',
    OTEL_TRACES_SAMPLER: 'always_on',
  };
  const envs: Record<TracingMode, Record<string, string>> = {
    off: { OTEL_SDK_DISABLED: 'true' },
    on,
    'on-json': { ...on, OTEL_EXPORTER_OTLP_PROTOCOL: 'http/json' },
    'sampled-10%': { ...on, OTEL_TRACES_SAMPLER: 'parentbased_traceidratio', OTEL_TRACES_SAMPLER_ARG: '0.1' },
  };
  const runs: TracingRun[] = [];
  try {
    for (let round = 0; round < rounds; round++) {
      for (const tracing of TRACING_MODES) {
        await c.startGateway(envs[tracing]);
        const spec = {
          url: c.gatewayUrl,
          connections: 100,
          method: 'GET' as const,
          path: readKey(1024),
          token: c.token,
        };
        await prime(c.gatewayUrl, c.token, ctx.quick ? 2 : PRIME_S);
        const result = await runLoad(
          { ...spec, durationS },
          clusterWatch(c, { active: active.proc.child.pid }),
        );
        runs.push({ tracing, result });
        ctx.log(`tracing ${tracing}: ${Math.round(result.rps)} req/s p99 ${result.p99} ms`);
        if (tracing === 'on' && sink.stats.requests === 0) {
          const deadline = performance.now() + EXPORT_WAIT_MS;
          while (sink.stats.requests === 0 && performance.now() < deadline) await sleep(100);
        }
      }
    }
  } finally {
    // Back to the configuration every other section uses, warmed up.
    await c.startGateway();
    await prime(c.gatewayUrl, c.token, ctx.quick ? 2 : PRIME_S);
    sink.close();
  }
  const implemented = sink.stats.requests > 0;
  ctx.log(
    implemented
      ? `tracing: ${sink.stats.requests} OTLP export requests (${Math.round(sink.stats.bytes / 1024)} KB) reached the sink`
      : 'tracing: no export reached the sink — tracing not yet implemented in this build',
  );
  return {
    implemented,
    exportRequests: sink.stats.requests,
    exportBytes: sink.stats.bytes,
    exportPaths: [...sink.stats.paths],
    runs,
  };
}
