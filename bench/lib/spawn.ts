/**
 * `spawnLeaderway` with Node flags (e.g. `--cpu-prof`, which NODE_OPTIONS refuses). Same contract
 * as the integration-test helper: resolves once the process logs "listening", keeps its output,
 * and SIGKILLs it if the bench exits without stopping it.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import * as path from 'node:path';
import { createInterface } from 'node:readline';
import type { Proc } from '../../test/helpers/procs';

const BIN = path.resolve(__dirname, '..', '..', 'bin', 'leaderway');
/** A stopped process gets this long to exit (a gateway drains first) before SIGKILL. */
const STOP_GRACE_MS = 20_000;

const live = new Set<ChildProcess>();
process.on('exit', () => {
  for (const c of live) c.kill('SIGKILL');
});

/** Spawns `node <nodeArgs> bin/leaderway <args>` with exactly `env` (plus PATH/HOME). */
export async function spawnLeaderwayWith(
  nodeArgs: string[],
  name: string,
  args: string[],
  env: Record<string, string>,
  port: number,
): Promise<Proc> {
  const child = spawn(process.execPath, [...nodeArgs, BIN, ...args], {
    env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '/tmp', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  live.add(child);
  const lines: string[] = [];
  const exited = new Promise<number | null>((resolve) =>
    child.once('exit', (code) => {
      live.delete(child);
      resolve(code);
    }),
  );
  let listening: () => void = () => {};
  const isListening = new Promise<void>((r) => {
    listening = r;
  });
  for (const stream of [child.stdout, child.stderr]) {
    createInterface({ input: stream as NodeJS.ReadableStream }).on('line', (line) => {
      lines.push(line);
      if (line.includes('"msg":"listening"')) listening();
    });
  }
  const proc: Proc = {
    name,
    child,
    url: `http://127.0.0.1:${port}`,
    port,
    clusterPort: 0,
    lines,
    exited,
    async stop(signal: NodeJS.Signals = 'SIGTERM') {
      if (child.exitCode !== null || child.signalCode !== null) return child.exitCode;
      child.kill(signal);
      const t = setTimeout(() => child.kill('SIGKILL'), STOP_GRACE_MS);
      const code = await exited;
      clearTimeout(t);
      return code;
    },
    pause: () => child.kill('SIGSTOP'),
    resume: () => child.kill('SIGCONT'),
    logs: () => [],
  };
  const ok = await Promise.race([isListening.then(() => true), exited.then(() => false)]);
  if (!ok) throw new Error(`${name} exited before listening:\n${lines.slice(-20).join('\n')}`);
  return proc;
}
