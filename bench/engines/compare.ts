/**
 * Issue 4's engine choice, measured: a bare undici `Pool` proxy and an http-proxy-3 proxy (keep-
 * alive `https.Agent`), both doing mutual TLS to the real leader's cluster listener (presenting
 * the gateway's client certificate, trusting only the advertised one), against our real gateway
 * and HAProxy (TLS to the active's API), all in the same run, rounds alternating with a rotating
 * order. KV reads and writes, 1 KB, 100 connections (quick: reads). Rule from the issue: build on
 * undici unless http-proxy-3 comes within 10% of it.
 */

import { readFileSync, writeFileSync } from 'node:fs';
import * as path from 'node:path';
import { freePort } from '../../test/helpers/ports';
import { clusterWatch, type SectionContext } from '../lib/context';
import { type HAProxy, startHAProxy } from '../lib/haproxy';
import { kvBody } from '../lib/http';
import { type LoadResult, runLoad } from '../lib/load';
import { prime, readKey, seedReads, writeKey } from '../sections/steady';
import { NOT_INSTALLED_EXIT } from './engine-env';
import { type EngineProc, engineTarget, startBareUndici, startEngine } from './start-engine';

/**
 * Next-design prototypes: `undici-h2`, the bare undici proxy over HTTP/2 to the leader;
 * `haproxy-mtls`, HAProxy sending to the leader's cluster listener with the gateway's client
 * certificate, as a native data plane driven by the gateway would.
 */
export type EngineName = 'undici' | 'undici-h2' | 'http-proxy-3' | 'gateway' | 'haproxy' | 'haproxy-mtls';

export interface EngineRound {
  engine: EngineName;
  op: 'read' | 'write';
  round: number;
  result: LoadResult;
}

export interface EnginesResult {
  /** Why http-proxy-3 was not measured, if it was not. */
  skipped?: string;
  connections: number;
  rounds: EngineRound[];
}

export async function enginesSection(ctx: SectionContext): Promise<EnginesResult> {
  const c = ctx.cluster;
  const active = await c.settle();
  if (!c.gateway || !c.haproxy) throw new Error('the engine comparison needs the gateway and HAProxy');
  await seedReads(ctx, active, [1024]);
  const env = await engineTarget(ctx);
  const procs: Partial<Record<EngineName, EngineProc>> = {};
  let skipped: string | undefined;
  let mtls: HAProxy | undefined;
  try {
    procs.undici = await startBareUndici(ctx);
    procs['undici-h2'] = await startBareUndici(ctx, { LW_ENGINE_H2: '1' });
    mtls = await startMtlsHAProxy(ctx, env);
    const h = await startEngine('http-proxy-3-proxy.ts', env);
    if ('proc' in h) procs['http-proxy-3'] = h.proc;
    else {
      skipped =
        h.exitCode === NOT_INSTALLED_EXIT
          ? 'http-proxy-3 is not installed (npm install --no-save http-proxy-3@1.23.3, or into .bench/engines-deps: see BENCHMARKS.md)'
          : `the http-proxy-3 proxy did not start:\n${h.output}`;
      ctx.log(`engines: skipping http-proxy-3: ${skipped}`);
    }
    const urls: Partial<Record<EngineName, string>> = {
      undici: procs.undici.url,
      'undici-h2': procs['undici-h2'].url,
      'http-proxy-3': procs['http-proxy-3']?.url,
      gateway: c.gatewayUrl,
      haproxy: c.haproxy.url,
      'haproxy-mtls': mtls.url,
    };
    const engines = (Object.keys(urls) as EngineName[]).filter((e) => urls[e] !== undefined);
    for (const e of engines) await prime(urls[e] as string, c.token, ctx.quick ? 2 : 3);
    const rounds = ctx.quick ? 1 : 3;
    const durationS = ctx.quick ? 2 : 3;
    const ops = ctx.quick ? (['read'] as const) : (['read', 'write'] as const);
    const connections = 100;
    const out: EngineRound[] = [];
    for (let round = 0; round < rounds; round++) {
      for (const op of ops) {
        for (let i = 0; i < engines.length; i++) {
          const engine = engines[(i + round) % engines.length] as EngineName;
          const spec = {
            url: urls[engine] as string,
            connections,
            method: op === 'read' ? ('GET' as const) : ('POST' as const),
            path: op === 'read' ? readKey(1024) : (n: number) => writeKey(1024, n),
            body: op === 'write' ? kvBody(1024) : undefined,
            token: c.token,
          };
          const watch = clusterWatch(c, {
            active: active.proc.child.pid,
            undici: procs.undici.child.pid,
            'undici-h2': procs['undici-h2'].child.pid,
            'haproxy-mtls': mtls.pid,
            'http-proxy-3': procs['http-proxy-3']?.child.pid,
          });
          await runLoad({ ...spec, durationS: 1 });
          const result = await runLoad({ ...spec, durationS }, watch);
          out.push({ engine, op, round, result });
          ctx.log(
            `engines round ${round + 1} ${op} ${engine}: ${Math.round(result.rps)} req/s p99 ${result.p99} ms ` +
              `errors ${result.errors} (other work: ${Math.round(result.foreignCpuPct ?? 0)}% CPU)`,
          );
        }
      }
    }
    return { skipped, connections, rounds: out };
  } finally {
    for (const p of Object.values(procs)) p?.stop();
    await mtls?.stop();
  }
}

/** HAProxy to the leader's cluster listener over mutual TLS, as the gateway connects. */
async function startMtlsHAProxy(ctx: SectionContext, env: Record<string, string>): Promise<HAProxy> {
  const c = ctx.cluster;
  const pem = path.join(c.dir, 'gateway-identity.pem');
  const read = (k: string) => readFileSync(env[k] as string, 'utf8');
  writeFileSync(pem, `${read('LW_ENGINE_CERT_FILE')}\n${read('LW_ENGINE_KEY_FILE')}`);
  const target = new URL(env.LW_ENGINE_TARGET as string);
  const name = env.LW_ENGINE_SERVERNAME as string;
  return startHAProxy({
    dir: c.dir,
    tag: 'haproxy-mtls',
    port: await freePort(),
    servers: [
      {
        name: 'leader',
        port: Number(target.port),
        options: `ssl crt ${pem} ca-file ${env.LW_ENGINE_CA_FILE} verify required sni str(${name}) verifyhost ${name} ssl-min-ver TLSv1.2 ssl-max-ver TLSv1.2`,
      },
    ],
  });
}
