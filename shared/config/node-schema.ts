/**
 * The node's (`leaderway server`) configuration schema. Stanza names mirror OpenBao's
 * (`storage`, `ha_storage`, `listener`, `api_addr`, `cluster_addr`, `disable_clustering`,
 * `seal`) so a config file reads like a `bao server` one.
 */
import { hostname } from 'node:os';
import { type ListenerConfig, listenerSchema, metricsAddressSchema } from './listener';
import type { Schema } from './load';

/** The node id used when LEADERWAY_NODE_ID is unset: the host name, made log-safe. */
export function defaultNodeId(): string {
  return (
    hostname()
      .replace(/[^A-Za-z0-9._-]/g, '-')
      .slice(0, 63) || 'node'
  );
}

/** Storage kinds a node can use. */
export const STORAGE_TYPES = ['redis', 'postgresql', 'inmem'] as const;

export const nodeSchema = {
  listener: {
    address: {
      doc: 'API listener host:port.',
      format: 'host-port',
      default: '127.0.0.1:8200',
      env: 'LEADERWAY_LISTEN_ADDR',
    },
    cluster_address: {
      doc: "Cluster listener host:port (only the active node listens). Default: the API listener's IP, port + 1.",
      format: 'optional-host-port',
      default: '',
      env: 'LEADERWAY_CLUSTER_LISTEN_ADDR',
    },
    ...listenerSchema('API'),
  },
  metrics_address: metricsAddressSchema(
    'metrics are then only at sys/metrics with a token, or at /metrics with unauthenticated_metrics_access',
  ),
  storage: {
    type: {
      doc: 'Data storage: redis, postgresql, or inmem (one process only; not for production).',
      format: [...STORAGE_TYPES],
      default: 'redis',
      env: 'LEADERWAY_STORAGE',
    },
    redis_url: {
      doc: 'Redis for storage: redis://[user:password@]host:port[/db], rediss://... (TLS), or redis+sentinel://[user:password@]host:port[,host:port]/mastername[/db][?sentinel_username=..&sentinel_password=..] (rediss+sentinel:// for TLS).',
      format: 'redis-url',
      default: 'redis://127.0.0.1:6379',
      env: 'LEADERWAY_REDIS_URL',
    },
    prefix: {
      doc: 'Key namespace in Redis, so several clusters can share one Redis. Used as a hash tag.',
      format: 'redis-prefix',
      default: 'leaderway',
      env: 'LEADERWAY_REDIS_PREFIX',
    },
    min_replicas: {
      doc: 'A write (data, lock, epoch) is acknowledged only once Redis WAIT confirms this many replicas have it; otherwise the client gets 503 "outcome is unknown". auto: 1 with a redis+sentinel:// URL, 0 (no WAIT sent) otherwise.',
      format: 'min-replicas',
      default: 'auto',
      env: 'LEADERWAY_REDIS_MIN_REPLICAS',
    },
    wait_timeout: {
      doc: 'How long a write waits for its replicas (Redis WAIT) before it is answered "outcome is unknown". Lock commands wait at most half their own timeout.',
      format: 'duration',
      default: '1s',
      env: 'LEADERWAY_REDIS_WAIT_TIMEOUT',
    },
    connection_url: {
      doc: 'PostgreSQL for storage (OpenBao: connection_url): postgres://[user:password@]host:port/database[?sslmode=verify-full&...]. The node creates and migrates its tables.',
      format: 'postgres-url',
      default: 'postgres://127.0.0.1:5432/leaderway',
      env: 'LEADERWAY_POSTGRESQL_URL',
    },
    table: {
      doc: 'PostgreSQL table holding the data (OpenBao: table). Several clusters can share a database with different tables.',
      format: 'pg-identifier',
      default: 'leaderway_kv',
      env: 'LEADERWAY_POSTGRESQL_TABLE',
    },
    ha_table: {
      doc: 'PostgreSQL table holding the HA lock (OpenBao: ha_table); in the same database as the data, so every write is fenced in its own transaction.',
      format: 'pg-identifier',
      default: 'leaderway_ha_locks',
      env: 'LEADERWAY_POSTGRESQL_HA_TABLE',
    },
    max_parallel: {
      doc: 'Connections to PostgreSQL for data at most (OpenBao: max_parallel).',
      format: 'nat',
      default: 16,
      env: 'LEADERWAY_POSTGRESQL_MAX_PARALLEL',
    },
  },
  ha_storage: {
    type: {
      doc: 'Separate HA storage for the lock (split storage): redis or postgresql, or empty to keep the lock in storage.',
      format: ['', ...STORAGE_TYPES],
      default: '',
      env: 'LEADERWAY_HA_STORAGE',
    },
    redis_url: {
      doc: 'Redis for ha_storage. Setting it alone implies LEADERWAY_HA_STORAGE=redis.',
      format: 'optional-redis-url',
      default: '',
      env: 'LEADERWAY_HA_REDIS_URL',
    },
    connection_url: {
      doc: 'PostgreSQL for ha_storage (its lock table is storage.ha_table). Setting it alone implies LEADERWAY_HA_STORAGE=postgresql.',
      format: 'optional-postgres-url',
      default: '',
      env: 'LEADERWAY_HA_POSTGRESQL_URL',
    },
  },
  seal: {
    key: {
      doc: 'The static seal key: base64 of 32 bytes. Wraps the root key. Required.',
      format: 'key-list',
      default: '',
      env: 'LEADERWAY_SEAL_KEY',
      sensitive: true,
    },
  },
  advertisement_key: {
    doc: 'Key(s) encrypting the leader advertisement: base64 of 32 bytes; a comma-separated list rotates keys (the first encrypts, all decrypt). Gateways hold it too. Must differ from the seal key.',
    format: 'key-list',
    default: '',
    env: 'LEADERWAY_ADVERTISEMENT_KEY',
    sensitive: true,
  },
  advertisement_signing_key: {
    doc: 'Ed25519 key (base64 of its 32-byte seed) the active node signs its advertisement with. Nodes only: gateways refuse to start with it. `leaderway keys` makes one.',
    format: 'key-list',
    default: '',
    env: 'LEADERWAY_ADVERTISEMENT_SIGNING_KEY',
    sensitive: true,
  },
  advertisement_verify_key: {
    doc: 'Ed25519 public key(s) (base64, 32 bytes; comma-separated to rotate) whose advertisements are trusted. Default: the signing key’s own.',
    format: 'key-list',
    default: '',
    env: 'LEADERWAY_ADVERTISEMENT_VERIFY_KEY',
  },
  advertisement_legacy: {
    doc: 'Also write and accept the previous, unsigned advertisement format, for a rolling upgrade from it (see the runbook). Turn off once every node and gateway runs this version.',
    format: Boolean,
    default: false,
    env: 'LEADERWAY_ADVERTISEMENT_LEGACY',
  },
  gateway_ca_file: {
    doc: 'PEM CA bundle that issues gateways’ client certificates (intermediates included): the active node’s cluster listener accepts a gateway whose certificate it issued, with the clientAuth extended key usage and a name gateway_allowed_names allows. Read again at every term. Without it, no gateway can connect.',
    format: String,
    default: '',
    env: 'LEADERWAY_GATEWAY_CA_FILE',
  },
  gateway_allowed_names: {
    doc: 'Comma-separated patterns a gateway certificate’s DNS or URI SAN must match (never the CN): a pattern with :// matches URI SANs (SPIFFE IDs, spiffe://example.org/ns/vault/sa/leaderway-gateway), any other DNS SANs; * is one or more characters within one DNS label or one URI path segment (not in a URI’s scheme or authority). A blank list is refused while gateway_ca_file is set.',
    format: String,
    default: 'leaderway-gateway',
    env: 'LEADERWAY_GATEWAY_ALLOWED_NAMES',
  },
  gateway_crl_file: {
    doc: 'PEM file of X.509 CRLs, each signed by a certificate of gateway_ca_file: a gateway certificate it revokes is refused on every new cluster connection, and open connections with it are cut. Reloaded when the file changes (a CRL that does not verify is refused and the previous one kept). When set, every gateway certificate’s issuer needs a CRL in it.',
    format: String,
    default: '',
    env: 'LEADERWAY_GATEWAY_CRL_FILE',
  },
  api_addr: {
    doc: 'Full URL clients are redirected to when they reach a standby (with a gateway: the load balancer / gateway URL). Required in HA mode.',
    format: 'optional-url',
    default: '',
    env: 'BAO_API_ADDR',
    envAliases: ['VAULT_API_ADDR'],
  },
  cluster_addr: {
    doc: "Address this node advertises for the cluster channel: when active, for standbys and gateways; when a standby serving reads, for gateways spreading reads. Default: api_addr's host, port + 1. Always https.",
    format: String,
    default: '',
    env: 'BAO_CLUSTER_ADDR',
    envAliases: ['VAULT_CLUSTER_ADDR'],
  },
  disable_clustering: {
    doc: 'No cluster listener; standbys always answer 307 to the active api_addr.',
    format: Boolean,
    default: false,
    env: 'LEADERWAY_DISABLE_CLUSTERING',
  },
  request_forwarding: {
    doc: 'Standbys forward requests to the active over the cluster channel (false: always 307).',
    format: Boolean,
    default: true,
    env: 'LEADERWAY_REQUEST_FORWARDING',
  },
  disable_standby_reads: {
    doc: "Standbys forward every request to the active (OpenBao's disable_standby_reads). Default false: a standby serves reads itself (GET/LIST of anything that only reads storage), forwarding writes; no read is stale (docs/GUARANTEES.md, G15).",
    format: Boolean,
    default: false,
    env: 'LEADERWAY_DISABLE_STANDBY_READS',
  },
  failover_wait: {
    doc: 'How long a standby holds a forwarded request the active did not serve (a leader change, or Redis failing over) and retries it, before the 307 fallback.',
    format: 'duration',
    default: '10s',
    env: 'LEADERWAY_FAILOVER_WAIT',
  },
  lock_ttl: {
    doc: 'HA lock TTL; the holder renews every third of it and gives up before it can expire.',
    format: 'duration',
    default: '5s',
    env: 'LEADERWAY_LOCK_TTL',
  },
  liveness_grace: {
    doc: "Crash failover: a standby takes the lock over once the holder's Redis connection has been gone this long, instead of waiting out lock_ttl (a frozen process or dead host still takes the TTL). 0 turns it off; off by itself under split storage or when Redis refuses CLIENT ID/LIST.",
    format: 'duration',
    default: '300ms',
    env: 'LEADERWAY_LIVENESS_GRACE',
  },
  step_down_cooldown: {
    doc: 'After sys/step-down, how long the node waits before contending for the lock again.',
    format: 'duration',
    default: '10s',
    env: 'LEADERWAY_STEP_DOWN_COOLDOWN',
  },
  shutdown_timeout: {
    doc: 'On SIGTERM/SIGINT, how long in-flight requests may take before they are cut off.',
    format: 'duration',
    default: '10s',
    env: 'LEADERWAY_SHUTDOWN_TIMEOUT',
  },
  node_id: {
    doc: 'Node name in logs, sys/ha-status and traces. Default: the host name.',
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
  max_request_size: {
    doc: 'Largest request body accepted; larger bodies get 413.',
    format: 'byte-size',
    default: '32MiB',
    env: 'LEADERWAY_MAX_REQUEST_SIZE',
  },
  response_budget: {
    doc: 'Bytes the active node lets requests hold in memory at once: a read of a KV secret holds the secret’s stored size from before it is fetched, an authenticated body its length from before it is read, until the response is flushed. Requests beyond it wait in arrival order; one larger than the whole budget is served alone. Each byte held costs up to ~5 bytes of memory (~8 for a write) until then; a full GC runs each time large holds have given back a budget-full, so the default fits a 512 MiB container (README: "Memory bounded by design").',
    format: 'byte-size',
    default: '24MiB',
    env: 'LEADERWAY_RESPONSE_BUDGET',
  },
  response_budget_wait: {
    doc: 'How long a request waits for room in response_budget before it is answered 503 with Retry-After (LW_ERR_OVERLOADED). Below http_read_timeout, so a waiting write is refused before its body times out.',
    format: 'duration',
    default: '20s',
    env: 'LEADERWAY_RESPONSE_BUDGET_WAIT',
  },
} satisfies Schema;

/** The node configuration as loaded (durations and sizes already in ms and bytes). */
export interface NodeConfig {
  listener: ListenerConfig & { cluster_address: string };
  metrics_address: string;
  storage: {
    type: (typeof STORAGE_TYPES)[number];
    redis_url: string;
    prefix: string;
    min_replicas: string;
    wait_timeout: number;
    connection_url: string;
    table: string;
    ha_table: string;
    max_parallel: number;
  };
  ha_storage: { type: '' | (typeof STORAGE_TYPES)[number]; redis_url: string; connection_url: string };
  seal: { key: string };
  advertisement_key: string;
  advertisement_signing_key: string;
  advertisement_verify_key: string;
  advertisement_legacy: boolean;
  gateway_ca_file: string;
  gateway_allowed_names: string;
  gateway_crl_file: string;
  api_addr: string;
  cluster_addr: string;
  disable_clustering: boolean;
  request_forwarding: boolean;
  disable_standby_reads: boolean;
  failover_wait: number;
  lock_ttl: number;
  liveness_grace: number;
  step_down_cooldown: number;
  shutdown_timeout: number;
  node_id: string;
  log_level: string;
  max_request_size: number;
  response_budget: number;
  response_budget_wait: number;
}
