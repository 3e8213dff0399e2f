/**
 * Starts a real PostgreSQL cluster (initdb + postgres) on a free loopback port in a temporary
 * directory for integration tests, like helpers/redis.ts does for Redis. Run as root (a CI
 * container), the server runs as the `postgres` user (initdb and postgres refuse root). Output is
 * suppressed unless `LW_TEST_VERBOSE=1` (then prefixed `[postgres:<port>]`); the last lines are
 * kept for the error of a failed start. Every server is SIGKILLed and its directory removed if the
 * test process exits without stopping it.
 */
import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { appendFileSync, chownSync, existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { createInterface } from 'node:readline';
import { Client } from 'pg';
import { freePort } from './ports';

/** How long a fresh server gets to accept a connection. */
const START_TIMEOUT_MS = 20_000;
/** Gap between connection attempts while it starts. */
const PROBE_INTERVAL_MS = 50;
/** A SIGTERM'd (smart shutdown) server gets this long to exit before SIGKILL. */
const STOP_GRACE_MS = 5000;
/** Another process may grab the port between our probe and the server's bind. */
const PORT_ATTEMPTS = 3;
const KEPT_OUTPUT_LINES = 30;

/** Debian installs the server binaries here, not on PATH. */
function binDir(): string {
  const override = process.env['LW_PG_BIN'];
  if (override) return override;
  for (const v of ['17', '16', '15', '14']) {
    const dir = `/usr/lib/postgresql/${v}/bin`;
    if (existsSync(path.join(dir, 'postgres'))) return dir;
  }
  throw new Error('PostgreSQL server not found: install it (apt-get install -y postgresql)');
}

/** Root cannot run initdb/postgres: run them as `postgres` (uid/gid looked up once). */
function runAs(): { uid: number; gid: number } | undefined {
  if (process.getuid?.() !== 0) return undefined;
  const uid = Number(execFileSync('id', ['-u', 'postgres']).toString().trim());
  const gid = Number(execFileSync('id', ['-g', 'postgres']).toString().trim());
  return { uid, gid };
}

/** A running test PostgreSQL. */
export interface PostgresServer {
  readonly port: number;
  /** `postgres://postgres@127.0.0.1:<port>/postgres`. */
  readonly url: string;
  /** Stops the server (SIGTERM fast shutdown by default) but keeps its data for `start()`. */
  kill(signal?: 'SIGINT' | 'SIGTERM' | 'SIGKILL'): Promise<void>;
  /** Starts it again on the same port (no-op while running). */
  start(): Promise<void>;
  /** SIGSTOP of the postmaster and every backend: connections stay open, nothing answers. */
  pause(): void;
  resume(): void;
  /** Runs one statement on a short-lived connection and returns its rows. */
  sql(text: string, params?: unknown[]): Promise<Array<Record<string, unknown>>>;
  /** The server's process id (the postmaster), while it runs. */
  readonly pid: number | undefined;
  /** Its data directory (the leak scan reads its files). */
  readonly dataDir: string;
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

class TestPostgres implements PostgresServer {
  readonly url: string;
  private child: ChildProcess | undefined;
  private output: string[] = [];
  private stopped = false;
  readonly dataDir: string;

  constructor(
    readonly port: number,
    private readonly dir: string,
    private readonly user: { uid: number; gid: number } | undefined,
    private readonly settings: readonly string[],
  ) {
    this.url = `postgres://postgres@127.0.0.1:${port}/postgres`;
    this.dataDir = path.join(dir, 'data');
  }

  get pid(): number | undefined {
    return this.child?.pid;
  }

  initdb(passwordAuth: boolean): void {
    execFileSync(
      path.join(binDir(), 'initdb'),
      ['-D', this.dataDir, '-A', 'trust', '-U', 'postgres', '--no-sync', '-E', 'UTF8', '--locale=C'],
      { stdio: 'pipe', ...(this.user ?? {}) },
    );
    if (!passwordAuth) return;
    // Lines are matched in order: the superuser (the tests' admin) stays trusted, every other
    // role must prove its password, as against a production server.
    const hba = path.join(this.dataDir, 'pg_hba.conf');
    writeFileSync(
      hba,
      [
        'local all all trust',
        'host all postgres 127.0.0.1/32 trust',
        // A standby's base backup and streaming (startPostgresPair) as the superuser.
        'host replication postgres 127.0.0.1/32 trust',
        'host all all 127.0.0.1/32 scram-sha-256',
        '',
      ].join('\n'),
    );
    if (this.user) chownSync(hba, this.user.uid, this.user.gid);
  }

  async start(): Promise<void> {
    if (this.stopped) throw new Error('test postgres was stopped');
    if (this.child) return;
    const args = [
      '-D',
      this.dataDir,
      '-p',
      String(this.port),
      '-c',
      'listen_addresses=127.0.0.1',
      '-c',
      `unix_socket_directories=${this.dir}`,
      ...this.settings.flatMap((s) => ['-c', s]),
    ];
    const child = spawn(path.join(binDir(), 'postgres'), args, {
      stdio: ['ignore', 'pipe', 'pipe'],
      ...(this.user ?? {}),
    });
    this.child = child;
    live.add(child);
    this.output = [];
    let failure: string | undefined;
    child.once('error', (err) => {
      failure = `postgres failed to spawn: ${err.message}`;
    });
    child.once('exit', (code, signal) => {
      live.delete(child);
      if (this.child === child) this.child = undefined;
      failure ??= `postgres exited (${signal ?? code})`;
    });
    for (const stream of [child.stdout, child.stderr]) {
      if (stream) createInterface({ input: stream }).on('line', (line) => this.log(line));
    }
    const deadline = performance.now() + START_TIMEOUT_MS;
    while (performance.now() < deadline && failure === undefined) {
      try {
        await this.sql('SELECT 1');
        return;
      } catch {
        await new Promise((r) => setTimeout(r, PROBE_INTERVAL_MS));
      }
    }
    await this.kill('SIGKILL');
    throw new Error(`${failure ?? 'postgres did not accept connections'}:\n${this.output.join('\n')}`);
  }

  async kill(signal: 'SIGINT' | 'SIGTERM' | 'SIGKILL' = 'SIGINT'): Promise<void> {
    const child = this.child;
    if (!child) return;
    this.child = undefined;
    if (child.pid === undefined || child.exitCode !== null || child.signalCode !== null) return;
    const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
    this.signalAll('SIGCONT', child.pid);
    // The backends outlive a SIGKILLed postmaster until they notice; they are ended too, as a
    // crash of the host would (listed first: once the postmaster is gone they have a new parent).
    if (signal === 'SIGKILL') this.signalAll('SIGKILL', child.pid);
    else child.kill(signal);
    const timer = setTimeout(() => child.kill('SIGKILL'), STOP_GRACE_MS);
    await exited;
    clearTimeout(timer);
  }

  pause(): void {
    this.signalAll('SIGSTOP');
  }

  resume(): void {
    this.signalAll('SIGCONT');
  }

  async sql(text: string, params: unknown[] = []): Promise<Array<Record<string, unknown>>> {
    const client = new Client({ connectionString: this.url, connectionTimeoutMillis: 1000 });
    client.on('error', () => {});
    try {
      await client.connect();
      return (await client.query(text, params)).rows;
    } finally {
      await client.end().catch(() => undefined);
    }
  }

  async stop(): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    await this.kill('SIGINT');
    rmSync(this.dir, { recursive: true, force: true });
    dirs.delete(this.dir);
  }

  /** The postmaster and its children (backends, checkpointer, ...): `pgrep -P`. */
  private signalAll(signal: NodeJS.Signals, parent = this.child?.pid): void {
    if (parent === undefined) return;
    let children: number[] = [];
    try {
      children = execFileSync('pgrep', ['-P', String(parent)])
        .toString()
        .split('\n')
        .filter(Boolean)
        .map(Number);
    } catch {
      // pgrep exits 1 when there is no child.
    }
    for (const pid of [parent, ...children]) {
      try {
        process.kill(pid, signal);
      } catch {
        // Already gone.
      }
    }
  }

  private log(line: string): void {
    this.output.push(line);
    if (this.output.length > KEPT_OUTPUT_LINES) this.output.shift();
    if (process.env['LW_TEST_VERBOSE'] === '1') process.stderr.write(`[postgres:${this.port}] ${line}\n`);
  }
}

/** Options for a test PostgreSQL. */
export interface PostgresOptions {
  /** More server settings, `name=value` (passed as `-c`). */
  settings?: readonly string[];
  /**
   * Roles other than `postgres` log in over TCP with their password (SCRAM-SHA-256), not
   * trusted: for tests of roles and their passwords.
   */
  passwordAuth?: boolean;
}

/**
 * Creates a cluster in a temporary directory and starts it on a free loopback port (fsync off:
 * a test cluster need not survive a host crash). Call `stop()` in an `after` hook.
 */
export async function startPostgres(opts: PostgresOptions = {}): Promise<PostgresServer> {
  installExitHook();
  const user = runAs();
  const dir = mkdtempSync(path.join(tmpdir(), 'lw-pg-'));
  dirs.add(dir);
  if (user) chownSync(dir, user.uid, user.gid);
  const settings = ['fsync=off', 'max_connections=200', ...(opts.settings ?? [])];
  let lastError: unknown;
  let initialized = false;
  for (let attempt = 0; attempt < PORT_ATTEMPTS; attempt++) {
    const server = new TestPostgres(await freePort(), dir, user, settings);
    try {
      if (!initialized) server.initdb(opts.passwordAuth ?? false);
      initialized = true;
      await server.start();
      return server;
    } catch (err) {
      await server.kill('SIGKILL');
      lastError = err;
    }
  }
  rmSync(dir, { recursive: true, force: true });
  dirs.delete(dir);
  throw lastError;
}

/** A primary and its streaming standby (see `startPostgresPair`). */
export interface PostgresPair {
  /** The server that takes writes now (changes with `rebuild()`). */
  primary: PostgresServer;
  /** Its standby now (changes with `rebuild()`). */
  standby: PostgresServer;
  /** Both hosts, first primary first: `postgres://postgres@127.0.0.1:<p>,127.0.0.1:<s>/postgres`. */
  readonly url: string;
  /**
   * `pg_promote()` on the standby; resolves once it accepts writes. `keepSynchronous`: the
   * standby is first told (ALTER SYSTEM) to want a synchronous standby of its own, so no commit
   * is acknowledged on it alone until `rebuild()` gives it one (writes wait meanwhile).
   */
  promote(o?: { keepSynchronous?: boolean }): Promise<void>;
  /**
   * After `promote()` with the old primary gone (killed): a fresh standby of the new primary
   * (pg_basebackup) on the old primary's port, so the URL names both again; the roles swap and
   * it resolves once the new standby streams (and, when synchronous, is `sync`).
   */
  rebuild(): Promise<void>;
  /** Resolves once the standby streams from the primary (and, when synchronous, is `sync`). */
  streaming(): Promise<void>;
  stop(): Promise<void>;
}

const STANDBY_NAME = 'lw_standby';

/**
 * A standby of `primary` on `port` (a free one when omitted) in a new directory: pg_basebackup
 * over loopback, `standby.signal`, and `primary_conninfo` naming it `STANDBY_NAME`.
 */
async function startStandby(primary: PostgresServer, port?: number): Promise<TestPostgres> {
  const user = runAs();
  const dir = mkdtempSync(path.join(tmpdir(), 'lw-pg-standby-'));
  dirs.add(dir);
  if (user) chownSync(dir, user.uid, user.gid);
  let standby: TestPostgres | undefined;
  try {
    const dataDir = path.join(dir, 'data');
    execFileSync(
      path.join(binDir(), 'pg_basebackup'),
      [
        '-D',
        dataDir,
        '-h',
        '127.0.0.1',
        '-p',
        String(primary.port),
        '-U',
        'postgres',
        '-X',
        'stream',
        '--no-sync',
        // Not a spread checkpoint (the default): the backup starts at once.
        '--checkpoint=fast',
      ],
      { stdio: 'pipe', ...(user ?? {}) },
    );
    writeFileSync(path.join(dataDir, 'standby.signal'), '');
    appendFileSync(
      path.join(dataDir, 'postgresql.auto.conf'),
      `primary_conninfo = 'host=127.0.0.1 port=${primary.port} user=postgres application_name=${STANDBY_NAME}'\n`,
    );
    if (user) {
      chownSync(path.join(dataDir, 'standby.signal'), user.uid, user.gid);
      chownSync(path.join(dataDir, 'postgresql.auto.conf'), user.uid, user.gid);
    }
    // The standby's own settings: it may be promoted, so it must be able to serve as a primary;
    // no synchronous standby of its own (it has none) so that writes go on after a promotion.
    standby = new TestPostgres(port ?? (await freePort()), dir, user, [
      'fsync=off',
      'max_connections=200',
      'hot_standby=on',
      'wal_level=replica',
      'max_wal_senders=5',
      'wal_keep_size=256MB',
      // After its primary is lost the standby retries streaming every this long, and may only
      // act on pg_promote() then (the 5 s default made promotions take 5 s).
      'wal_retrieve_retry_interval=200ms',
    ]);
    await standby.start();
    return standby;
  } catch (err) {
    await standby?.stop();
    rmSync(dir, { recursive: true, force: true });
    dirs.delete(dir);
    throw err;
  }
}

/**
 * A primary and a hot standby streaming from it (pg_basebackup, on loopback). `synchronous`:
 * the primary's `synchronous_standby_names` names the standby, so a COMMIT is answered only once
 * the standby has the WAL on disk (`synchronous_commit=on`) — an acknowledged write survives the
 * primary's loss and the standby's promotion. Without the standby connected, commits wait.
 */
export async function startPostgresPair(opts: {
  synchronous: boolean;
  /** As for `startPostgres` (the standbys copy the primary's pg_hba.conf). */
  passwordAuth?: boolean;
}): Promise<PostgresPair> {
  const first = await startPostgres({
    passwordAuth: opts.passwordAuth,
    settings: [
      'wal_level=replica',
      'max_wal_senders=5',
      'wal_keep_size=256MB',
      ...(opts.synchronous ? [`synchronous_standby_names=${STANDBY_NAME}`, 'synchronous_commit=on'] : []),
    ],
  });
  let second: TestPostgres;
  try {
    second = await startStandby(first);
  } catch (err) {
    await first.stop();
    throw err;
  }
  const pair: PostgresPair = {
    primary: first,
    standby: second,
    url: `postgres://postgres@127.0.0.1:${first.port},127.0.0.1:${second.port}/postgres`,
    async promote(o = {}) {
      const s = pair.standby;
      if (o.keepSynchronous) {
        // Read by the server only once promoted: from then on it waits for a standby of its own.
        await s.sql(`ALTER SYSTEM SET synchronous_standby_names = '${STANDBY_NAME}'`);
        await s.sql('SELECT pg_reload_conf()');
      }
      await s.sql('SELECT pg_promote(true, 30)');
      const deadline = performance.now() + START_TIMEOUT_MS;
      while ((await s.sql('SELECT pg_is_in_recovery() AS r'))[0]?.['r'] !== false) {
        if (performance.now() > deadline) throw new Error('the standby did not leave recovery');
        await new Promise((r) => setTimeout(r, PROBE_INTERVAL_MS));
      }
    },
    async rebuild() {
      const promoted = pair.standby;
      const old = pair.primary;
      // Its data diverges from the promoted server's timeline: it is discarded, not rewound.
      await old.stop();
      const fresh = await startStandby(promoted, old.port);
      pair.primary = promoted;
      pair.standby = fresh;
      await pair.streaming();
    },
    async streaming() {
      const deadline = performance.now() + START_TIMEOUT_MS;
      for (;;) {
        const rows = await pair.primary
          .sql('SELECT sync_state FROM pg_stat_replication WHERE application_name = $1', [STANDBY_NAME])
          .catch(() => []);
        const state = rows[0]?.['sync_state'];
        if (state === (opts.synchronous ? 'sync' : 'async')) return;
        if (performance.now() > deadline) throw new Error(`the standby is not streaming (${String(state)})`);
        await new Promise((r) => setTimeout(r, PROBE_INTERVAL_MS));
      }
    },
    async stop() {
      await pair.standby.stop();
      await pair.primary.stop();
    },
  };
  await pair.streaming();
  return pair;
}

/** `postgres://role:password@127.0.0.1:<port>/postgres` on `pg`. */
export function roleUrl(pg: PostgresServer, role: string, password: string): string {
  return `postgres://${role}:${encodeURIComponent(password)}@127.0.0.1:${pg.port}/postgres`;
}

/**
 * Creates a LOGIN role for nodes, not a superuser, allowed to create tables in `public` (which
 * PostgreSQL 15 grants to nobody): the tables it creates are its own, as in production. Returns
 * its URL.
 */
export async function createNodeRole(pg: PostgresServer, role: string, password: string): Promise<string> {
  await pg.sql(`CREATE ROLE ${role} LOGIN PASSWORD '${password}'`);
  await pg.sql(`GRANT CREATE ON SCHEMA public TO ${role}`);
  return roleUrl(pg, role, password);
}
