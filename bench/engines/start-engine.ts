/**
 * Starting the minimal proxies of bench/engines as child processes, aimed at the current
 * leader's cluster listener with the gateway's client certificate (as the gateway connects).
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import * as path from 'node:path';
import { createInterface } from 'node:readline';
import { derToPem } from '../../shared/leader/leader-client';
import { readAdvertisement } from '../../test/helpers/cluster';
import { freePort } from '../../test/helpers/ports';
import { gatewayPkiFiles } from '../../test/helpers/procs';
import type { SectionContext } from '../lib/context';

const ROOT = path.resolve(__dirname, '..', '..');
const START_TIMEOUT_MS = 15_000;

export interface EngineProc {
  child: ChildProcess;
  url: string;
  stop(): void;
}

/** Starts one minimal proxy; resolves null with the reason when it exits before listening. */
export async function startEngine(
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

/** The environment a minimal proxy needs to reach the current leader as a gateway would. */
export async function engineTarget(ctx: SectionContext): Promise<Record<string, string>> {
  const c = ctx.cluster;
  const ad = await readAdvertisement(c.redis.url, c.keys);
  const caFile = path.join(c.dir, 'leader-cert.pem');
  writeFileSync(caFile, derToPem(ad.cert, 'CERTIFICATE'));
  const identity = await gatewayPkiFiles();
  return {
    LW_ENGINE_TARGET: ad.cluster_addr,
    LW_ENGINE_CA_FILE: caFile,
    LW_ENGINE_CERT_FILE: identity.certFile,
    LW_ENGINE_KEY_FILE: identity.keyFile,
    LW_ENGINE_SERVERNAME: `fw-${ad.uuid}`,
  };
}

/**
 * Starts the bare undici proxy (mutual TLS to the current leader's cluster listener, like the
 * gateway): the floor the gateway's own cost is measured against. Call `stop()` when done.
 */
export async function startBareUndici(
  ctx: SectionContext,
  extra: Record<string, string> = {},
): Promise<EngineProc> {
  const u = await startEngine('undici-proxy.ts', { ...(await engineTarget(ctx)), ...extra });
  if (!('proc' in u)) throw new Error(`the undici proxy did not start:\n${u.output}`);
  return u.proc;
}
