/**
 * The gateway's (`leaderway gateway`) configuration schema. The gateway holds only the
 * advertisement key: it never needs, and refuses to start with, the seal key.
 */
import { type ListenerConfig, listenerSchema, metricsAddressSchema } from './listener';
import type { Schema } from './load';
import { defaultNodeId } from './node-schema';

export const gatewaySchema = {
  listener: {
    address: {
      doc: 'Gateway listener host:port (the load balancer targets this).',
      format: 'host-port',
      default: '127.0.0.1:8300',
      env: 'LEADERWAY_LISTEN_ADDR',
    },
    ...listenerSchema('gateway'),
  },
  metrics_address: metricsAddressSchema(
    'metrics are then only at /metrics with unauthenticated_metrics_access',
  ),
  storage: {
    redis_url: {
      doc: 'Redis holding the advertisements (the nodes’ storage).',
      format: 'redis-url',
      default: 'redis://127.0.0.1:6379',
      env: 'LEADERWAY_REDIS_URL',
    },
    prefix: {
      doc: 'Key namespace in Redis; must match the nodes’.',
      format: 'redis-prefix',
      default: 'leaderway',
      env: 'LEADERWAY_REDIS_PREFIX',
    },
  },
  ha_storage: {
    redis_url: {
      doc: 'Redis holding the lock, when the nodes use split storage (their LEADERWAY_HA_REDIS_URL).',
      format: 'optional-redis-url',
      default: '',
      env: 'LEADERWAY_HA_REDIS_URL',
    },
  },
  advertisement_key: {
    doc: 'The nodes’ advertisement key(s): base64 of 32 bytes, comma-separated to rotate. Required.',
    format: 'key-list',
    default: '',
    env: 'LEADERWAY_ADVERTISEMENT_KEY',
    sensitive: true,
  },
  advertisement_verify_key: {
    doc: 'The nodes’ Ed25519 public key(s) (base64, 32 bytes; comma-separated to rotate): only advertisements they signed are trusted. Required.',
    format: 'key-list',
    default: '',
    env: 'LEADERWAY_ADVERTISEMENT_VERIFY_KEY',
  },
  identity: {
    cert_file: {
      doc: 'PEM client certificate this gateway presents to the active node (issued by the CA in the nodes’ LEADERWAY_GATEWAY_CA_FILE). Required; reloaded on SIGHUP and when the file changes.',
      format: String,
      default: '',
      env: 'LEADERWAY_GATEWAY_CERT_FILE',
    },
    key_file: {
      doc: 'PEM private key of that certificate.',
      format: String,
      default: '',
      env: 'LEADERWAY_GATEWAY_KEY_FILE',
    },
  },
  trusted_proxies: {
    doc: 'CIDRs (comma-separated) whose X-Forwarded-For/-Proto/-Host are kept (the load balancer). Others’ are dropped.',
    format: 'cidr-list',
    default: '',
    env: 'LEADERWAY_TRUSTED_PROXIES',
  },
  failover_wait: {
    doc: 'How long a request is held waiting for a leader (no leader, or the leader failed) before 503.',
    format: 'duration',
    default: '10s',
    env: 'LEADERWAY_FAILOVER_WAIT',
  },
  drain_delay: {
    doc: 'On SIGTERM, how long /-/ready reports 503 while traffic is still served, so the load balancer moves away.',
    format: 'duration',
    default: '5s',
    env: 'LEADERWAY_DRAIN_DELAY',
  },
  shutdown_timeout: {
    doc: 'After the drain delay, how long in-flight requests may take before they are cut off.',
    format: 'duration',
    default: '10s',
    env: 'LEADERWAY_SHUTDOWN_TIMEOUT',
  },
  upstream_connections: {
    doc: 'Connections kept to the leader (keep-alive pool size).',
    format: 'nat',
    default: 128,
    env: 'LEADERWAY_UPSTREAM_CONNECTIONS',
  },
  read_routing: {
    doc: 'Where reads go: `active` sends every request to the active node; `spread` sends reads (GET/HEAD/LIST outside sys/, no body, no X-Vault-Wrap-TTL, X-Vault-Forward or X-Vault-Inconsistent) to the active or to a healthy standby, whichever has the fewest requests outstanding, retrying on the active any read a standby did not serve. Writes always go to the active.',
    format: ['active', 'spread'],
    default: 'active',
    env: 'LEADERWAY_GATEWAY_READ_ROUTING',
  },
  node_id: {
    doc: 'Gateway name in logs and traces. Default: the host name.',
    format: String,
    default: defaultNodeId(),
    env: 'LEADERWAY_NODE_ID',
  },
  log_level: {
    doc: 'Log level: fatal, error, warn, info, debug, trace or silent.',
    format: ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'],
    default: 'info',
    env: 'LEADERWAY_LOG_LEVEL',
  },
} satisfies Schema;

export interface GatewayConfig {
  listener: ListenerConfig;
  metrics_address: string;
  storage: { redis_url: string; prefix: string };
  ha_storage: { redis_url: string };
  advertisement_key: string;
  advertisement_verify_key: string;
  identity: { cert_file: string; key_file: string };
  trusted_proxies: string;
  failover_wait: number;
  drain_delay: number;
  shutdown_timeout: number;
  upstream_connections: number;
  read_routing: 'active' | 'spread';
  node_id: string;
  log_level: string;
}
