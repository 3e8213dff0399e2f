/** Options of `leaderway redis-acl` (least-privilege Redis users for nodes and gateways, and an operator's). */
import type { Schema } from './load';

export const redisAclSchema = {
  prefix: {
    doc: 'Key namespace in Redis (the nodes’ and gateways’ LEADERWAY_REDIS_PREFIX).',
    format: 'redis-prefix',
    default: 'leaderway',
    env: 'LEADERWAY_REDIS_PREFIX',
  },
  node_password: {
    doc: 'Password of the leaderway-node Redis user (at least 16 characters). Required.',
    format: String,
    default: '',
    env: 'LEADERWAY_REDIS_NODE_PASSWORD',
    sensitive: true,
  },
  gateway_password: {
    doc: 'Password of the leaderway-gateway Redis user (at least 16 characters). Required.',
    format: String,
    default: '',
    env: 'LEADERWAY_REDIS_GATEWAY_PASSWORD',
    sensitive: true,
  },
  admin_password: {
    doc: 'Password of the leaderway-admin Redis user, for operators (SCRIPT KILL, INFO, MONITOR, ACL SETUSER…; at least 16 characters). Empty: no admin user is written.',
    format: String,
    default: '',
    env: 'LEADERWAY_REDIS_ADMIN_PASSWORD',
    sensitive: true,
  },
  disable_default: {
    doc: 'Also print `user default off`, so a client without credentials can do nothing (for a Redis that serves only this cluster).',
    format: Boolean,
    default: false,
    env: 'LEADERWAY_REDIS_ACL_DISABLE_DEFAULT',
  },
  out_file: {
    doc: 'Write the lines to this file (mode 0600) instead of standard output.',
    format: String,
    default: '',
    env: 'LEADERWAY_REDIS_ACL_FILE',
  },
} satisfies Schema;

export interface RedisAclConfig {
  prefix: string;
  node_password: string;
  gateway_password: string;
  admin_password: string;
  disable_default: boolean;
  out_file: string;
}
