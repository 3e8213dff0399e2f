/**
 * `leaderway redis-acl`: prints Redis `aclfile` lines for the two least-privilege users of one
 * cluster, `leaderway-node` and `leaderway-gateway`, and, given its password, the operators'
 * `leaderway-admin` (see shared/storage/redis/acl.ts), with the passwords from
 * LEADERWAY_REDIS_NODE_PASSWORD, _GATEWAY_PASSWORD and _ADMIN_PASSWORD (hashed).
 */
import { writeFileSync } from 'node:fs';
import { ConfigError, loadConfig } from '../shared/config/load';
import { type RedisAclConfig, redisAclSchema } from '../shared/config/redis-acl-schema';
import { aclLines } from '../shared/storage/redis/acl';
import { exitOnConfigError } from './run';

/** Redis allows any password; short ones are guessable over the network. */
const MIN_PASSWORD_LENGTH = 16;

export async function redisAclCommand(): Promise<void> {
  let c: RedisAclConfig;
  try {
    c = await loadConfig<RedisAclConfig>(redisAclSchema, { useConfigFile: false });
    for (const [key, env] of [
      ['node_password', 'LEADERWAY_REDIS_NODE_PASSWORD'],
      ['gateway_password', 'LEADERWAY_REDIS_GATEWAY_PASSWORD'],
    ] as const) {
      if (c[key].length < MIN_PASSWORD_LENGTH)
        throw new ConfigError(`${key} (${env}): required, at least ${MIN_PASSWORD_LENGTH} characters`);
    }
    if (c.admin_password && c.admin_password.length < MIN_PASSWORD_LENGTH)
      throw new ConfigError(
        `admin_password (LEADERWAY_REDIS_ADMIN_PASSWORD): at least ${MIN_PASSWORD_LENGTH} characters`,
      );
    const given = [c.node_password, c.gateway_password, c.admin_password].filter((p) => p !== '');
    if (new Set(given).size !== given.length)
      throw new ConfigError('node_password, gateway_password and admin_password must differ');
  } catch (err) {
    exitOnConfigError(err);
  }
  const lines = aclLines(c.prefix, {
    node: c.node_password,
    gateway: c.gateway_password,
    admin: c.admin_password || undefined,
  });
  if (c.disable_default) lines.unshift('user default off');
  const text = `${lines.join('\n')}\n`;
  if (c.out_file) writeFileSync(c.out_file, text, { mode: 0o600 });
  else process.stdout.write(text);
}
