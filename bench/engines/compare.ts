/**
 * Issue 4's engine choice, measured: a bare undici `Pool` proxy and an http-proxy-3 proxy (keep-
 * alive `https.Agent`), both doing mutual TLS to the real leader's cluster listener (presenting
 * the gateway's client certificate, trusting only the advertised one), against our real gateway
 * and HAProxy (TLS to the active's API), all in the same run, rounds alternating with a rotating
 * order. KV reads and writes, 1 KB, 100 connections (quick: reads). Rule from the issue: build on
 * undici unless http-proxy-3 comes within 10% of it.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import * as path from 'node:path';
import { createInterface } from 'node:readline';
import { derToPem } from '../../shared/leader/leader-client';
import { readAdvertisement } from '../../test/helpers/cluster';
import { freePort } from '../../test/helpers/ports';
import { gatewayPkiFiles } from '../../test/helpers/procs';
import { clusterWatch, type SectionContext } from '../lib/context';
import { kvBody } from '../lib/http';
import { type LoadResult, runLoad } from '../lib/load';
import { prime, readKey, seedReads, writeKey } from '../sections/steady';
import { NOT_INSTALLED_EXIT } from './engine-env';

export type EngineName = 'undici' | 'http-proxy-3' | 'gateway' | 'haproxy';

const ROOT = path.resolve(__dirname, '..', '..');
const START_TIMEOUT_MS = 15_000;

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

interface EngineProc {
  child: ChildProcess;
  url: string;
  stop(): void;
}

/** Starts one minimal proxy; resolves null with the reason when it exits before listening. */
async function startEngine(
  file: string,
  env: Record<string, string>,
): Promise<{ proc: EngineProc } | { exitCode: number | null; output: string }> {
  const port = await freePort();
  const child = spawn(process.execPath, ['--import', 'tsx', path.join(__dirname, file)], {
    cwd: ROOT,
    env: {
      PATH: process.env.PATH ?? '',
      HOME: process.env.HOME ?? '/tmp',
      ...env,
      LW_ENGINE_PORT: String(port),
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  process.once('exit', () => child.kill('SIGKILL'));
  const lines: string[] = [];
  const listening = new Promise<boolean>((resolve) => {
    for (const s of [child.stdout, child.stderr]) {
      if (s)
        createInterface({ input: s }).on('line', (l) => {
          lines.push(l);
          if (l.includes('"msg":"listening"')) resolve(true);
        });
    }
    child.once('exit', () => resolve(false));
    setTimeout(() => resolve(false), START_TIMEOUT_MS).unref();
  });
  if (!(await listening)) {
    child.kill('SIGKILL');
    return { exitCode: child.exitCode, output: lines.join('\n') };
  }
  return { proc: { child, url: `http://127.0.0.1:${port}`, stop: () => child.kill('SIGKILL') } };
}

export async function enginesSection(ctx: SectionContext): Promise<EnginesResult> {
  const c = ctx.cluster;
  const active = await c.settle();
  if (!c.gateway || !c.haproxy) throw new Error('the engine comparison needs the gateway and HAProxy');
  await seedReads(ctx, active, [1024]);
  const ad = await readAdvertisement(c.redis.url, c.keys);
  const caFile = path.join(c.dir, 'leader-cert.pem');
  writeFileSync(caFile, derToPem(ad.cert, 'CERTIFICATE'));
  const identity = await gatewayPkiFiles();
  const env = {
    LW_ENGINE_TARGET: ad.cluster_addr,
    LW_ENGINE_CA_FILE: caFile,
    LW_ENGINE_CERT_FILE: identity.certFile,
    LW_ENGINE_KEY_FILE: identity.keyFile,
    LW_ENGINE_SERVERNAME: `fw-${ad.uuid}`,
  };
  const procs: Partial<Record<EngineName, EngineProc>> = {};
  let skipped: string | undefined;
  try {
    const u = await startEngine('undici-proxy.ts', env);
    if (!('proc' in u)) throw new Error(`the undici proxy did not start:\n${u.output}`);
    procs.undici = u.proc;
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
      'http-proxy-3': procs['http-proxy-3']?.url,
      gateway: c.gatewayUrl,
      haproxy: c.haproxy.url,
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
  }
}
