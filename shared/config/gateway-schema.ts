/**
 * The gateway's (`leaderway gateway`) configuration schema. The gateway holds only the
 * advertisement key: it never needs, and refuses to start with, the seal key. Storage variables
 * have the nodes' names and defaults, so one environment block can serve both.
 */
import { type ListenerConfig, listenerSchema, metricsAddressSchema } from './listener';
import type { Schema } from './load';
import { defaultNodeId } from './node-schema';
import { nodesTablesSchema } from './postgres-grants-schema';

/** Storage a gateway can read (not inmem: that lives inside one `leaderway dev` process). */
export const GATEWAY_STORAGE_TYPES = ['redis', 'postgresql'] as const;
export type GatewayStorageType = (typeof GATEWAY_STORAGE_TYPES)[number];

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
    type: {
      doc: 'Where the nodes keep their storage: redis or postgresql. The gateway only reads (the lock, the advertisements and the membership records).',
      format: [...GATEWAY_STORAGE_TYPES],
      default: 'redis',
      env: 'LEADERWAY_STORAGE',
    },
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
    connection_url: {
      doc: 'PostgreSQL holding the nodes’ storage, as the gateway’s read-only role (`leaderway postgres-grants`): postgres://leaderway_gateway:password@host:port/database[?sslmode=verify-full&...]. Required with LEADERWAY_STORAGE=postgresql. The gateway never creates, migrates or writes a table.',
      format: 'optional-postgres-url',
      default: '',
      env: 'LEADERWAY_POSTGRESQL_URL',
    },
    ...nodesTablesSchema,
    max_parallel: {
      doc: 'Connections to PostgreSQL for reading advertisements and membership records at most.',
      format: 'nat',
      default: 16,
      env: 'LEADERWAY_POSTGRESQL_MAX_PARALLEL',
    },
  },
  ha_storage: {
    type: {
      doc: 'The nodes’ separate HA storage (split storage): redis or postgresql, or empty when the lock is in storage.',
      format: ['', ...GATEWAY_STORAGE_TYPES],
      default: '',
      env: 'LEADERWAY_HA_STORAGE',
    },
    redis_url: {
      doc: 'Redis holding the lock, when the nodes use split storage (their LEADERWAY_HA_REDIS_URL). Setting it alone implies LEADERWAY_HA_STORAGE=redis.',
      format: 'optional-redis-url',
      default: '',
      env: 'LEADERWAY_HA_REDIS_URL',
    },
    connection_url: {
      doc: 'PostgreSQL holding the lock (table storage.ha_table), when the nodes use split storage, as the gateway’s read-only role. Setting it alone implies LEADERWAY_HA_STORAGE=postgresql.',
      format: 'optional-postgres-url',
      default: '',
      env: 'LEADERWAY_HA_POSTGRESQL_URL',
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
  storage: {
    type: GatewayStorageType;
    redis_url: string;
    prefix: string;
    connection_url: string;
    table: string;
    ha_table: string;
    max_parallel: number;
  };
  ha_storage: { type: '' | GatewayStorageType; redis_url: string; connection_url: string };
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
