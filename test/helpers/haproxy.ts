/** A real HAProxy (Debian's package) for tests, from a config text, in the foreground (-db). */
import { type ChildProcess, spawn } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import * as path from 'node:path';
import { createInterface } from 'node:readline';
import { waitFor } from './procs';

const HAPROXY_BIN = '/usr/sbin/haproxy';

export interface TestHAProxy {
  readonly lines: string[];
  stop(): Promise<void>;
}

/** Starts HAProxy with `config` (written to `dir`) and waits until `port` accepts connections. */
export async function startTestHAProxy(dir: string, config: string, port: number): Promise<TestHAProxy> {
  const file = path.join(dir, 'haproxy.cfg');
  writeFileSync(file, config);
  const child: ChildProcess = spawn(HAPROXY_BIN, ['-db', '-f', file], { stdio: ['ignore', 'pipe', 'pipe'] });
  const lines: string[] = [];
  for (const s of [child.stdout, child.stderr])
    if (s) createInterface({ input: s }).on('line', (l) => lines.push(l));
  const exited = new Promise<void>((r) => child.once('exit', () => r()));
  process.once('exit', () => child.kill('SIGKILL'));
  const net = await import('node:net');
  await waitFor(
    () =>
      new Promise<boolean>((resolve) => {
        if (child.exitCode !== null) throw new Error(`haproxy exited: ${lines.join('\n')}`);
        const c = net.connect(port, '127.0.0.1');
        c.once('connect', () => {
          c.destroy();
          resolve(true);
        });
        c.once('error', () => resolve(false));
      }),
    10_000,
    'haproxy listening',
  );
  return {
    lines,
    async stop() {
      child.kill('SIGTERM');
      await Promise.race([exited, new Promise((r) => setTimeout(r, 3_000))]);
      child.kill('SIGKILL');
    },
  };
}
