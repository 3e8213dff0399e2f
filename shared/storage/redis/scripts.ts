/**
 * Loads the Lua scripts in `scripts/` and adds them to a client as commands (`lwBatch`, ...) that
 * run with EVALSHA only. On NOSCRIPT (Redis restarted, failed over or flushed its script cache)
 * the command loads its script with SCRIPT LOAD and runs again — safe, writes included, because
 * NOSCRIPT means nothing ran. Not ioredis' defineCommand: that sends the whole script with EVAL
 * on every new connection, so the node's Redis user would need EVAL, which runs any Lua at all;
 * this way it needs only EVALSHA of these scripts' SHA-1s (acl.ts). The argument layouts are
 * documented at the top of each file.
 */
import { createHash } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import * as path from 'node:path';
import type Redis from 'ioredis';
import { LwError } from '../../errors';

/** A Redis argument: values travel as Buffers so binary bytes round-trip. */
export type RedisArg = string | Buffer | number;

/** The commands `defineScripts` adds. Replies are documented in the `.lua` files. */
export interface LeaderwayCommands {
  /** Reply: the new epoch, or 0 when the lock is held (or changed, taking over). */
  lwLockAcquire(
    lockKey: string,
    epochKey: string,
    connKey: string,
    value: string,
    ttlMs: number,
    conn: string,
    expectedValue: string,
    expectedConn: string,
  ): Promise<number>;
  /** Reply: 1 renewed, 0 not held by `value`. */
  lwLockRenew(lockKey: string, connKey: string, value: string, ttlMs: number, conn: string): Promise<number>;
  /** Reply: 1 released, 0 not held by `value`. */
  lwLockRelease(lockKey: string, connKey: string, value: string): Promise<number>;
  /** Reply: 1 recorded, 0 not held by `value`. */
  lwLockTouch(lockKey: string, connKey: string, value: string, conn: string): Promise<number>;
  /** Reply: 1 applied, 0 guard exists, -1 fenced. The first argument is the number of keys. */
  lwBatch(numKeys: number, ...keysAndArgs: RedisArg[]): Promise<number>;
  /** Reply: the value if at most `maxBytes` long, else its length; null when absent. */
  lwGetWithin(dataKey: string, maxBytes: number): Promise<Buffer | number | null>;
}

/** An ioredis client with the leaderway scripts defined. */
export type ScriptedRedis = Redis & LeaderwayCommands;

const SCRIPT_DIR_FROM_ROOT = path.join('shared', 'storage', 'redis', 'scripts');

/** A script's command, file and number of keys; `buffers`: its reply carries stored bytes. */
interface Definition {
  command: keyof LeaderwayCommands;
  file: string;
  keys?: number;
  buffers?: boolean;
}

const DEFINITIONS: readonly Definition[] = [
  { command: 'lwLockAcquire', file: 'lock-acquire.lua', keys: 3 },
  { command: 'lwLockRenew', file: 'lock-renew.lua', keys: 2 },
  { command: 'lwLockRelease', file: 'lock-release.lua', keys: 2 },
  { command: 'lwLockTouch', file: 'lock-touch.lua', keys: 2 },
  // The batch touches a variable number of keys, so the caller passes the count.
  { command: 'lwBatch', file: 'batch.lua' },
  { command: 'lwGetWithin', file: 'get-within.lua', keys: 1, buffers: true },
];

let loaded: Map<string, string> | undefined;

/**
 * Finds the scripts directory. Run from source (tsx) it sits beside this file; after `tsc` the
 * `.lua` files are not copied into `dist/`, so walk up to the package root (the directory
 * holding package.json) and use the source tree there.
 */
function scriptDir(): string {
  const beside = path.join(__dirname, 'scripts');
  if (existsSync(path.join(beside, 'batch.lua'))) return beside;
  for (let dir = __dirname; ; dir = path.dirname(dir)) {
    if (existsSync(path.join(dir, 'package.json'))) return path.join(dir, SCRIPT_DIR_FROM_ROOT);
    if (path.dirname(dir) === dir) break;
  }
  throw new LwError('LW_ERR_CONFIG', 'redis Lua scripts not found (shared/storage/redis/scripts)');
}

function loadScripts(): Map<string, string> {
  if (!loaded) {
    const dir = scriptDir();
    const scripts = new Map<string, string>();
    for (const { file } of DEFINITIONS) {
      try {
        scripts.set(file, readFileSync(path.join(dir, file), 'utf8'));
      } catch (err) {
        throw new LwError('LW_ERR_CONFIG', `redis Lua script ${file} could not be read`, { cause: err });
      }
    }
    loaded = scripts;
  }
  return loaded;
}

/** Each script file and the SHA-1 EVALSHA names it by (what the node's Redis user may run). */
export function scriptShas(): Array<{ file: string; sha: string }> {
  const scripts = loadScripts();
  return DEFINITIONS.map(({ file }) => ({ file, sha: sha1(scripts.get(file) as string) }));
}

function sha1(lua: string): string {
  return createHash('sha1').update(lua, 'utf8').digest('hex');
}

/** Redis does not have the script (restarted, failed over, SCRIPT FLUSH): it did not run. */
function isNoScript(err: unknown): boolean {
  return err instanceof Error && err.message.startsWith('NOSCRIPT');
}

/** The command for one script: EVALSHA, and on NOSCRIPT a SCRIPT LOAD and EVALSHA again. */
function scriptCommand(client: Redis, d: Definition, lua: string) {
  const sha = sha1(lua);
  type Args = [numKeys: number, ...args: RedisArg[]];
  const run = (argv: Args): Promise<unknown> =>
    d.buffers ? client.callBuffer('evalsha', sha, ...argv) : client.evalsha(sha, ...argv);
  return async (...args: RedisArg[]): Promise<unknown> => {
    const argv = (d.keys === undefined ? args : [d.keys, ...args]) as Args;
    try {
      return await run(argv);
    } catch (err) {
      if (!isNoScript(err)) throw err;
      await client.script('LOAD', lua);
      return run(argv);
    }
  };
}

/** Adds the leaderway commands to `client` and returns it, typed. */
export function defineScripts(client: Redis): ScriptedRedis {
  const scripts = loadScripts();
  const commands: Record<string, unknown> = {};
  for (const d of DEFINITIONS) commands[d.command] = scriptCommand(client, d, scripts.get(d.file) as string);
  return Object.assign(client, commands) as unknown as ScriptedRedis;
}
