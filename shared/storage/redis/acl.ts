/**
 * Least-privilege Redis users for one cluster (prefix), as `aclfile` lines (`leaderway redis-acl`).
 * Each user may send exactly what its process sends (test/security/least-privilege.test.ts runs
 * a cluster as these users and finds no refusal in Redis' ACL LOG):
 *
 *  - `leaderway-node`: reads, writes, publish/subscribe on the cluster's keys and channel; WAIT
 *    (writes acknowledged only once replicated); INFO and CLIENT ID/LIST (the lock connection's
 *    identity, for holder liveness); and of scripting only EVALSHA of leaderway's own scripts
 *    (their SHA-1s, below: Redis 7 allows a command's first argument to be pinned, `+evalsha|<sha>`)
 *    and SCRIPT LOAD to put them back after Redis forgot them. Loading a script runs nothing, and
 *    no other script can be run: without EVAL (which runs any Lua it is sent) a stolen node
 *    password cannot spin Redis in a script loop or reach the Lua interpreter's bugs. The
 *    scripts' own calls are checked against the same rules. No KEYS, MONITOR, CONFIG, FLUSH*,
 *    DEBUG, SHUTDOWN, MODULE, ACL, REPLICAOF, SELECT.
 *  - `leaderway-gateway`: read the lock, its epoch, the signed advertisements and the signed
 *    membership records (spread routing; read-only key permissions, `%R~`), subscribe to the leader channel, name its connections. Nothing else:
 *    it cannot take the lock, publish an advertisement, run a script, read a secret's
 *    ciphertext, or even run INFO (gateways connect without ioredis' INFO ready check).
 *  - `leaderway-admin` (when given a password): the operator's user, never a leaderway
 *    process's — every command on every key and channel but DEBUG and MODULE, for what the
 *    runbook asks of Redis: SCRIPT KILL a runaway script, INFO, SLOWLOG, MONITOR, ACL SETUSER to
 *    rotate the other users' passwords, removing a cluster's keys.
 *
 * Connection commands need no rule: Redis checks neither HELLO nor AUTH against a user's
 * commands, and ioredis sends no PING or QUIT. SELECT is not granted: use database 0 (separate
 * clusters by LEADERWAY_REDIS_PREFIX; ACLs do not separate databases anyway). A URL naming
 * another database fails to connect instead of silently using database 0.
 * Passwords are written as SHA-256 hashes (`#...`): the file holds none in the clear.
 */
import { createHash } from 'node:crypto';
import { SIGNED_LEADER_PREFIX } from '../../advertisement';
import { MEMBERS_PREFIX } from '../../membership';
import { redisKeys } from './keys';
import { scriptShas } from './scripts';

/** What every leaderway connection sends beyond HELLO: its name, for CLIENT LIST. */
const CONNECTION = ['+client|setname'];

/**
 * SHA-1s of scripts earlier releases ran, still allowed so that during a rolling upgrade the
 * nodes not yet upgraded keep working. When a script changes, add its previous SHA-1 here (and
 * drop it a release later): test/unit/redis-acl.test.ts fails until the change is acknowledged.
 */
export const RETIRED_SCRIPT_SHAS: readonly string[] = [];

/** Commands nodes send, directly or from their Lua scripts. */
function nodeCommands(): string[] {
  const shas = [...scriptShas().map((s) => s.sha), ...RETIRED_SCRIPT_SHAS];
  return [
    ...CONNECTION,
    '+get',
    '+mget',
    '+strlen',
    '+set',
    '+del',
    '+exists',
    '+incr',
    '+pexpire',
    '+pttl',
    '+time',
    '+zadd',
    '+zrem',
    '+zrangebylex',
    ...shas.map((sha) => `+evalsha|${sha}`),
    '+script|load',
    '+wait',
    '+publish',
    '+subscribe',
    // The ready check; the lock connection's server (INFO server: run_id).
    '+info',
    // Holder liveness: a standby checks the holder's lock connection by its id.
    '+client|id',
    '+client|list',
  ];
}

/** Commands gateways send. */
const GATEWAY_COMMANDS = [...CONNECTION, '+get', '+mget', '+subscribe'];

/** The operator's user: everything but loading code into Redis (MODULE) or crashing it (DEBUG). */
const ADMIN_RULES = '~* &* +@all -debug -module';

function hashed(password: string): string {
  return `#${createHash('sha256').update(password, 'utf8').digest('hex')}`;
}

/** The passwords of the users to write; no admin user without `admin`. */
export interface AclPasswords {
  node: string;
  gateway: string;
  admin?: string;
}

/** The aclfile lines for `prefix`. */
export function aclLines(prefix: string, passwords: AclPasswords): string[] {
  const k = redisKeys(prefix);
  return [
    `user leaderway-node on ${hashed(passwords.node)} resetkeys ~${k.tag}/* resetchannels &${k.events} -@all ${nodeCommands().join(' ')}`,
    `user leaderway-gateway on ${hashed(passwords.gateway)} resetkeys %R~${k.lock} %R~${k.epoch} %R~${k.data(SIGNED_LEADER_PREFIX)}* %R~${k.data(MEMBERS_PREFIX)}* resetchannels &${k.events} -@all ${GATEWAY_COMMANDS.join(' ')}`,
    ...(passwords.admin ? [`user leaderway-admin on ${hashed(passwords.admin)} ${ADMIN_RULES}`] : []),
  ];
}
