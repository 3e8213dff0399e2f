/**
 * Spawns real `leaderway` processes (the compiled CLI, as users run it) for integration tests.
 * Output is kept in memory (and printed with a `[name]` prefix when LW_TEST_VERBOSE=1); every
 * process is SIGKILLed if the test process exits without stopping it.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import * as path from 'node:path';
import { createInterface } from 'node:readline';
import { type GatewayPkiFiles, writeGatewayPki } from '../../cli/gateway-pki';

export type { GatewayPkiFiles };

import { signingKeyFromSeed } from '../../shared/crypto/signing';
import { freePorts } from './ports';

const ROOT = path.resolve(__dirname, '..', '..');
export const BIN = path.join(ROOT, 'bin', 'leaderway');
const VERBOSE = process.env.LW_TEST_VERBOSE === '1';
/** A stopped process gets this long to exit (a gateway drains first) before SIGKILL. */
const STOP_GRACE_MS = 20_000;

const live = new Set<ChildProcess>();
process.on('exit', () => {
  for (const c of live) c.kill('SIGKILL');
});

/** A running leaderway process. */
export interface Proc {
  readonly name: string;
  readonly child: ChildProcess;
  /** `http://127.0.0.1:<port>` of its API (node) or listener (gateway). */
  readonly url: string;
  readonly port: number;
  /** Cluster listener port (nodes). */
  readonly clusterPort: number;
  /**
   * `http://127.0.0.1:<port>` of its metrics listener (LEADERWAY_METRICS_ADDR), where `/metrics` is
   * scraped without a token; '' when it has none.
   */
  readonly metricsUrl: string;
  readonly lines: string[];
  /** Resolves the exit code once the process has exited. */
  readonly exited: Promise<number | null>;
  /** Sends `signal` (default SIGTERM) and waits for exit (SIGKILL after a grace). */
  stop(signal?: NodeJS.Signals): Promise<number | null>;
  pause(): void;
  resume(): void;
  /** Parsed JSON log lines. */
  logs(): Array<Record<string, unknown>>;
}

/** A test cluster's keys (base64): seal and signing keys for nodes; advertisement and verify keys for both. */
export interface TestKeys {
  sealKey: string;
  adKey: string;
  signingKey: string;
  verifyKey: string;
}

/** Fresh random keys for one test cluster. */
export function testKeys(): TestKeys {
  const seed = randomBytes(32);
  return {
    sealKey: randomBytes(32).toString('base64'),
    adKey: randomBytes(32).toString('base64'),
    signingKey: seed.toString('base64'),
    verifyKey: signingKeyFromSeed(seed).publicRaw.toString('base64'),
  };
}

let pkiFiles: Promise<GatewayPkiFiles> | undefined;

/** The test process's gateway PKI (a CA nodes trust, a client certificate), made once. */
export function gatewayPkiFiles(): Promise<GatewayPkiFiles> {
  pkiFiles ??= writeGatewayPki('lw-gateway-pki-');
  return pkiFiles;
}

/** Spawns `leaderway <args>` with exactly `env` (plus PATH/HOME) and returns once it is listening. */
export async function spawnLeaderway(
  name: string,
  args: string[],
  env: Record<string, string>,
  ports: { port: number; clusterPort?: number },
  opts: { waitListening?: boolean; nodeArgs?: string[]; bin?: string } = {},
): Promise<Proc> {
  // Node flags (e.g. --cpu-prof for the bench's profile section) go before the script.
  const child = spawn(process.execPath, [...(opts.nodeArgs ?? []), opts.bin ?? BIN, ...args], {
    env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '/tmp', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  live.add(child);
  const lines: string[] = [];
  const exited = new Promise<number | null>((resolve) => {
    child.once('exit', (code) => {
      live.delete(child);
      resolve(code);
    });
  });
  let listening: () => void = () => {};
  const isListening = new Promise<void>((r) => {
    listening = r;
  });
  for (const stream of [child.stdout, child.stderr]) {
    createInterface({ input: stream as NodeJS.ReadableStream }).on('line', (line) => {
      lines.push(line);
      if (VERBOSE) process.stderr.write(`[${name}] ${line}\n`);
      if (line.includes('"msg":"listening"')) listening();
    });
  }
  const proc: Proc = {
    name,
    child,
    url: `http://127.0.0.1:${ports.port}`,
    port: ports.port,
    clusterPort: ports.clusterPort ?? 0,
    metricsUrl: env.LEADERWAY_METRICS_ADDR ? `http://${env.LEADERWAY_METRICS_ADDR}` : '',
    lines,
    exited,
    async stop(signal: NodeJS.Signals = 'SIGTERM') {
      if (child.exitCode !== null || child.signalCode !== null) return child.exitCode;
      child.kill('SIGCONT');
      child.kill(signal);
      const t = setTimeout(() => child.kill('SIGKILL'), STOP_GRACE_MS);
      const code = await exited;
      clearTimeout(t);
      return code;
    },
    pause: () => child.kill('SIGSTOP'),
    resume: () => child.kill('SIGCONT'),
    logs: () =>
      lines.flatMap((l) => {
        if (!l.startsWith('{')) return [];
        try {
          return [JSON.parse(l) as Record<string, unknown>];
        } catch {
          return [];
        }
      }),
  };
  if (opts.waitListening === false) return proc;
  const ok = await Promise.race([isListening.then(() => true), exited.then(() => false)]);
  if (!ok) throw new Error(`${name} exited before listening:\n${lines.slice(-20).join('\n')}`);
  return proc;
}

/** Options for a test node. */
export interface NodeOptions {
  redisUrl: string;
  keys: TestKeys;
  /** Default: the node's own API URL (direct access). */
  apiAddr?: string;
  env?: Record<string, string>;
  waitListening?: boolean;
  /** Another build's `bin/leaderway` (the upgrade test runs the previous release). */
  bin?: string;
  /** Node flags before the script (e.g. `--cpu-prof`). */
  nodeArgs?: string[];
}

/** Spawns `leaderway server` on free ports (API, cluster, metrics) with a short lock TTL. */
export async function spawnNode(name: string, o: NodeOptions): Promise<Proc> {
  const [port, clusterPort, metricsPort] = (await freePorts(3)) as [number, number, number];
  const env: Record<string, string> = {
    LEADERWAY_LISTEN_ADDR: `127.0.0.1:${port}`,
    LEADERWAY_CLUSTER_LISTEN_ADDR: `127.0.0.1:${clusterPort}`,
    LEADERWAY_METRICS_ADDR: `127.0.0.1:${metricsPort}`,
    VAULT_API_ADDR: o.apiAddr ?? `http://127.0.0.1:${port}`,
    VAULT_CLUSTER_ADDR: `https://127.0.0.1:${clusterPort}`,
    LEADERWAY_REDIS_URL: o.redisUrl,
    LEADERWAY_SEAL_KEY: o.keys.sealKey,
    LEADERWAY_ADVERTISEMENT_KEY: o.keys.adKey,
    LEADERWAY_ADVERTISEMENT_SIGNING_KEY: o.keys.signingKey,
    LEADERWAY_GATEWAY_CA_FILE: (await gatewayPkiFiles()).caFile,
    LEADERWAY_NODE_ID: name,
    LEADERWAY_LOCK_TTL: '2s',
    LEADERWAY_STEP_DOWN_COOLDOWN: '3s',
    LEADERWAY_SHUTDOWN_TIMEOUT: '5s',
    ...o.env,
  };
  return spawnLeaderway(
    name,
    ['server'],
    env,
    { port, clusterPort },
    { waitListening: o.waitListening, bin: o.bin, nodeArgs: o.nodeArgs },
  );
}

/** Options for a test gateway. */
export interface GatewayOptions {
  redisUrl: string;
  keys: Pick<TestKeys, 'adKey' | 'verifyKey'>;
  env?: Record<string, string>;
  port?: number;
  bin?: string;
}

/** Spawns `leaderway gateway` on a free port (or `o.port`), with a metrics listener on another. */
export async function spawnGateway(name: string, o: GatewayOptions): Promise<Proc> {
  const port = o.port ?? ((await freePorts(1))[0] as number);
  const metricsPort = (await freePorts(1))[0] as number;
  const pki = await gatewayPkiFiles();
  const env: Record<string, string> = {
    LEADERWAY_LISTEN_ADDR: `127.0.0.1:${port}`,
    LEADERWAY_METRICS_ADDR: `127.0.0.1:${metricsPort}`,
    LEADERWAY_REDIS_URL: o.redisUrl,
    LEADERWAY_ADVERTISEMENT_KEY: o.keys.adKey,
    LEADERWAY_ADVERTISEMENT_VERIFY_KEY: o.keys.verifyKey,
    LEADERWAY_GATEWAY_CERT_FILE: pki.certFile,
    LEADERWAY_GATEWAY_KEY_FILE: pki.keyFile,
    LEADERWAY_NODE_ID: name,
    LEADERWAY_DRAIN_DELAY: '500ms',
    ...o.env,
  };
  return spawnLeaderway(name, ['gateway'], env, { port }, { bin: o.bin });
}

/** Polls `predicate` until it returns a truthy value or `timeoutMs` passes (then throws `what`). */
export async function waitFor<T>(
  predicate: () => T | Promise<T>,
  timeoutMs: number,
  what = 'condition',
  intervalMs = 50,
): Promise<NonNullable<T>> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    try {
      const v = await predicate();
      if (v) return v as NonNullable<T>;
    } catch (err) {
      last = err;
    }
    if (Date.now() > deadline) {
      throw new Error(
        `timed out after ${timeoutMs} ms waiting for ${what}${last ? `: ${String(last)}` : ''}`,
      );
    }
    await new Promise((r) => setTimeout(r, intervalMs));
  }
}
