/**
 * Least-privilege Redis users for one cluster (prefix), as `aclfile` lines (`leaderway redis-acl`).
 *
 *  - `leaderway-node`: the commands nodes send — reads, writes, the Lua scripts (whose own calls
 *    are checked against the same rules), publish/subscribe — on the cluster's keys and channel
 *    only. No KEYS, MONITOR, CONFIG, FLUSH*, DEBUG, SHUTDOWN, MODULE, ACL, REPLICAOF.
 *  - `leaderway-gateway`: read the lock, its epoch and the signed advertisements (read-only key
 *    permissions, `%R~`), subscribe to the leader channel. Nothing else: it cannot take the lock,
 *    publish an advertisement, run a script or read a secret's ciphertext.
 * Passwords are written as SHA-256 hashes (`#...`): the file holds none in the clear.
 */
import { createHash } from 'node:crypto';
import { SIGNED_LEADER_PREFIX } from '../../advertisement';
import { redisKeys } from './keys';

/** What every client connection sends (ioredis: ready check, connection name, db, ping). */
const CONNECTION = ['+ping', '+info', '+client|setname', '+select', '+hello', '+auth', '+quit'];

/** Commands nodes send, directly or from their Lua scripts. */
const NODE_COMMANDS = [
  ...CONNECTION,
  '+get',
  '+mget',
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
  '+eval',
  '+evalsha',
  '+script|load',
  '+script|exists',
  '+publish',
  '+subscribe',
  '+unsubscribe',
  // Holder liveness: a standby checks the holder's lock connection by its id.
  '+client|id',
  '+client|list',
];

/** Commands gateways send. */
const GATEWAY_COMMANDS = [...CONNECTION, '+get', '+mget', '+subscribe', '+unsubscribe'];

function hashed(password: string): string {
  return `#${createHash('sha256').update(password, 'utf8').digest('hex')}`;
}

/** The aclfile lines for `prefix`. */
export function aclLines(prefix: string, nodePassword: string, gatewayPassword: string): string[] {
  const k = redisKeys(prefix);
  return [
    `user leaderway-node on ${hashed(nodePassword)} resetkeys ~${k.tag}/* resetchannels &${k.events} -@all ${NODE_COMMANDS.join(' ')}`,
    `user leaderway-gateway on ${hashed(gatewayPassword)} resetkeys %R~${k.lock} %R~${k.epoch} %R~${k.data(SIGNED_LEADER_PREFIX)}* resetchannels &${k.events} -@all ${GATEWAY_COMMANDS.join(' ')}`,
  ];
}
