/**
 * Loads the Lua scripts in `scripts/` and registers them on a client with `defineCommand`
 * (ioredis sends EVALSHA, falling back to EVAL on a connection that has not loaded the script
 * yet, e.g. after Redis restarted). The argument layouts are documented at the top of each file.
 */
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
}

/** An ioredis client with the leaderway scripts defined. */
export type ScriptedRedis = Redis & LeaderwayCommands;

const SCRIPT_DIR_FROM_ROOT = path.join('shared', 'storage', 'redis', 'scripts');

const DEFINITIONS: ReadonlyArray<{ command: keyof LeaderwayCommands; file: string; keys?: number }> = [
  { command: 'lwLockAcquire', file: 'lock-acquire.lua', keys: 3 },
  { command: 'lwLockRenew', file: 'lock-renew.lua', keys: 2 },
  { command: 'lwLockRelease', file: 'lock-release.lua', keys: 2 },
  { command: 'lwLockTouch', file: 'lock-touch.lua', keys: 2 },
  // The batch touches a variable number of keys, so the caller passes the count.
  { command: 'lwBatch', file: 'batch.lua' },
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

/** Defines the leaderway commands on `client` and returns it, typed. */
export function defineScripts(client: Redis): ScriptedRedis {
  const scripts = loadScripts();
  for (const { command, file, keys } of DEFINITIONS) {
    const lua = scripts.get(file) as string;
    client.defineCommand(command, keys === undefined ? { lua } : { lua, numberOfKeys: keys });
  }
  return client as ScriptedRedis;
}
