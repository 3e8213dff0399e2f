/**
 * Spawns a real redis-server on a free loopback port for integration tests. Output is
 * suppressed unless `LW_TEST_VERBOSE=1` (then prefixed `[redis:<port>]`); the last lines are
 * kept and shown if the server fails to start. Every spawned server is SIGKILLed and its
 * directory removed if the test process exits without stopping it.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import * as net from 'node:net';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { createInterface } from 'node:readline';
import Redis from 'ioredis';
import { freePort } from './ports';

/** How long a fresh redis-server gets to answer PING. */
const START_TIMEOUT_MS = 10_000;
/** Gap between PING attempts while it starts. */
const PING_INTERVAL_MS = 25;
/** A SIGTERM'd server gets this long to exit before SIGKILL. */
const STOP_GRACE_MS = 3000;
/** Another process may grab the port between our probe and redis' bind: try a few ports. */
const PORT_ATTEMPTS = 5;
/** Output lines kept for the error message of a failed start. */
const KEPT_OUTPUT_LINES = 30;

const NOT_INSTALLED = 'redis-server not found: install it (apt-get install -y redis-server)';

/** A running test Redis. */
export interface RedisServer {
  readonly port: number;
  /** `redis://127.0.0.1:<port>`. */
  readonly url: string;
  /** Stops the server (SIGTERM, then SIGKILL) but keeps its port and directory for `start()`. */
  kill(signal?: 'SIGTERM' | 'SIGKILL'): Promise<void>;
  /** Starts it again on the same port (no-op while running). */
  start(): Promise<void>;
  /** `kill()` then `start()`. */
  restart(): Promise<void>;
  /** Empties its directory while it is stopped: the next `start()` is on an empty disk. */
  wipe(): void;
  /** SIGSTOP: the server keeps its connections but answers nothing. */
  pause(): void;
  /** SIGCONT. */
  resume(): void;
  /** Runs one command on a short-lived client and returns the raw reply. */
  cli(...args: string[]): Promise<unknown>;
  /** Kills the server and removes its directory. Idempotent. */
  stop(): Promise<void>;
}

const live = new Set<ChildProcess>();
const dirs = new Set<string>();
let exitHookInstalled = false;

function installExitHook(): void {
  if (exitHookInstalled) return;
  exitHookInstalled = true;
  process.on('exit', () => {
    for (const child of live) child.kill('SIGKILL');
    for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
  });
}

function ping(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = net.connect(port, '127.0.0.1');
    let reply = '';
    const done = (ok: boolean): void => {
      socket.destroy();
      resolve(ok);
    };
    socket.setTimeout(500, () => done(false));
    socket.once('error', () => done(false));
    socket.once('connect', () => socket.write('PING\r\n'));
    socket.on('data', (chunk) => {
      reply += chunk.toString();
      if (reply.includes('\r\n')) done(reply.startsWith('+PONG'));
    });
  });
}

class TestRedis implements RedisServer {
  readonly url: string;
  private child: ChildProcess | undefined;
  private output: string[] = [];
  private stopped = false;

  constructor(
    readonly port: number,
    private readonly dir: string,
    private readonly appendonly: boolean,
    private readonly extraArgs: readonly string[] = [],
    private readonly leadingArgs: readonly string[] = [],
    private readonly afterStart?: (s: RedisServer) => Promise<void>,
  ) {
    this.url = `redis://127.0.0.1:${port}`;
  }

  async start(): Promise<void> {
    if (this.stopped) throw new Error('test redis was stopped');
    if (this.child) return;
    // A Sentinel reads its configuration file, given first (it rewrites it as it learns).
    const args = [
      ...this.leadingArgs,
      '--port',
      String(this.port),
      '--bind',
      '127.0.0.1',
      '--protected-mode',
      'yes',
    ];
    args.push(
      '--save',
      '',
      '--appendonly',
      this.appendonly ? 'yes' : 'no',
      '--dir',
      this.dir,
      ...this.extraArgs,
    );
    const child = spawn('redis-server', args, { stdio: ['ignore', 'pipe', 'pipe'] });
    this.child = child;
    live.add(child);
    this.output = [];
    const exited = new Promise<string>((resolve) => {
      child.once('error', (err: NodeJS.ErrnoException) =>
        resolve(err.code === 'ENOENT' ? NOT_INSTALLED : `redis-server failed to spawn: ${err.message}`),
      );
      child.once('exit', (code, signal) => resolve(`redis-server exited (${signal ?? code})`));
    });
    exited.then(() => {
      live.delete(child);
      if (this.child === child) this.child = undefined;
    });
    for (const stream of [child.stdout, child.stderr]) {
      if (!stream) continue;
      createInterface({ input: stream }).on('line', (line) => this.log(line));
    }
    const deadline = performance.now() + START_TIMEOUT_MS;
    let failure: string | undefined;
    exited.then((why) => {
      failure = why;
    });
    while (performance.now() < deadline && failure === undefined) {
      if (await ping(this.port)) {
        await this.afterStart?.(this);
        return;
      }
      await new Promise((r) => setTimeout(r, PING_INTERVAL_MS));
    }
    if (failure === NOT_INSTALLED) throw new Error(NOT_INSTALLED);
    await this.kill('SIGKILL');
    throw new Error(`${failure ?? 'redis-server did not answer PING'}:\n${this.output.join('\n')}`);
  }

  async kill(signal: 'SIGTERM' | 'SIGKILL' = 'SIGTERM'): Promise<void> {
    const child = this.child;
    if (!child) return;
    this.child = undefined;
    if (child.pid === undefined || child.exitCode !== null || child.signalCode !== null) return;
    const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
    child.kill('SIGCONT'); // a paused server would never act on SIGTERM
    child.kill(signal);
    const timer = setTimeout(() => child.kill('SIGKILL'), STOP_GRACE_MS);
    await exited;
    clearTimeout(timer);
  }

  async restart(): Promise<void> {
    await this.kill();
    await this.start();
  }

  wipe(): void {
    if (this.child) throw new Error('wipe() needs a stopped server');
    for (const f of readdirSync(this.dir)) rmSync(path.join(this.dir, f), { recursive: true, force: true });
  }

  pause(): void {
    this.child?.kill('SIGSTOP');
  }

  resume(): void {
    this.child?.kill('SIGCONT');
  }

  async cli(...args: string[]): Promise<unknown> {
    const [command, ...rest] = args;
    if (!command) throw new Error('cli needs a command');
    const client = new Redis(this.port, '127.0.0.1', { lazyConnect: true, maxRetriesPerRequest: 0 });
    client.on('error', () => {});
    try {
      await client.connect();
      return await client.call(command, ...rest);
    } finally {
      client.disconnect();
    }
  }

  async stop(): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    await this.kill();
    rmSync(this.dir, { recursive: true, force: true });
    dirs.delete(this.dir);
  }

  private log(line: string): void {
    this.output.push(line);
    if (this.output.length > KEPT_OUTPUT_LINES) this.output.shift();
    if (process.env['LW_TEST_VERBOSE'] === '1') process.stderr.write(`[redis:${this.port}] ${line}\n`);
  }
}

/**
 * Starts a redis-server on a free loopback port (no RDB snapshots; AOF only with
 * `appendonly`) and resolves once it answers PING. Call `stop()` in an `after` hook.
 */
/** Options for a test Redis. */
export interface RedisOptions {
  appendonly?: boolean;
  /** More redis-server arguments (e.g. `--aclfile <path>`). */
  args?: readonly string[];
  /** Arguments before all others (a Sentinel's configuration file and `--sentinel`). */
  leadingArgs?: readonly string[];
  /** Use this port (a restarted topology member keeps its address). */
  port?: number;
  /** Runs each time the server has started and answers PING (settings that do not persist). */
  afterStart?: (s: RedisServer) => Promise<void>;
}

export async function startRedis(opts: RedisOptions = {}): Promise<RedisServer> {
  installExitHook();
  let lastError: unknown;
  for (let attempt = 0; attempt < PORT_ATTEMPTS; attempt++) {
    const dir = mkdtempSync(path.join(tmpdir(), 'lw-redis-'));
    dirs.add(dir);
    const server = new TestRedis(
      opts.port ?? (await freePort()),
      dir,
      opts.appendonly ?? false,
      opts.args,
      opts.leadingArgs,
      opts.afterStart,
    );
    try {
      await server.start();
      return server;
    } catch (err) {
      await server.stop();
      if (err instanceof Error && err.message === NOT_INSTALLED) throw err;
      lastError = err;
    }
  }
  throw lastError;
}
