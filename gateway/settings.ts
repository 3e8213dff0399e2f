/** Settings the gateway derives from its configuration. */
import type { BlockList } from 'node:net';
import { type HostPort, parseCidrList, parseKeyList } from '../shared/config/formats';
import type { GatewayConfig } from '../shared/config/gateway-schema';
import {
  type ListenerSettings,
  listenerSettings,
  metricsListen,
  type TlsSettings,
} from '../shared/config/listener';
import { ConfigError } from '../shared/config/load';
import { type VerifyKey, verifyKeyFromRaw } from '../shared/crypto/signing';
import type { StorageSpec } from '../shared/storage/open';
import type { ReadRouting } from './router';

export interface GatewaySettings {
  nodeId: string;
  listener: ListenerSettings;
  /** The metrics listener (`GET /metrics`, no token), or null when off. */
  metricsListen: HostPort | null;
  /** The nodes' storage, opened as a reader. */
  storage: StorageSpec;
  /** The nodes' separate HA storage (split storage), or null when the lock is in storage. */
  haStorage: StorageSpec | null;
  advertisementKeys: Buffer[];
  /** The nodes' advertisement verify keys. */
  verifyKeys: VerifyKey[];
  /** The certificate this gateway presents to the active node. */
  identity: TlsSettings;
  trustedProxies: BlockList;
  failoverWaitMs: number;
  drainDelayMs: number;
  shutdownTimeoutMs: number;
  upstreamConnections: number;
  /** Where reads go (LEADERWAY_GATEWAY_READ_ROUTING): the active only, or spread over standbys too. */
  readRouting: ReadRouting;
  logLevel: string;
}

/**
 * The storage specs, as the node derives its own (node/settings.ts): the HA storage's type may be
 * implied by its URL alone. A PostgreSQL URL has no default here: it must name the gateway's own
 * read-only role, never fall back to a node's.
 */
function storageSpecs(c: GatewayConfig): Pick<GatewaySettings, 'storage' | 'haStorage'> {
  if (c.storage.type === 'postgresql' && !c.storage.connection_url) {
    throw new ConfigError(
      'storage.connection_url (LEADERWAY_POSTGRESQL_URL): required when LEADERWAY_STORAGE=postgresql: the gateway’s read-only role (leaderway postgres-grants)',
    );
  }
  if (c.storage.type === 'postgresql' && c.storage.max_parallel < 1) {
    throw new ConfigError('storage.max_parallel (LEADERWAY_POSTGRESQL_MAX_PARALLEL): must be at least 1');
  }
  const haType =
    c.ha_storage.type || (c.ha_storage.redis_url ? 'redis' : c.ha_storage.connection_url ? 'postgresql' : '');
  if (haType === 'redis' && !c.ha_storage.redis_url) {
    throw new ConfigError(
      'ha_storage.redis_url (LEADERWAY_HA_REDIS_URL): required when LEADERWAY_HA_STORAGE=redis',
    );
  }
  if (haType === 'postgresql' && !c.ha_storage.connection_url) {
    throw new ConfigError(
      'ha_storage.connection_url (LEADERWAY_HA_POSTGRESQL_URL): required when LEADERWAY_HA_STORAGE=postgresql',
    );
  }
  const postgres = (url: string) => ({
    postgres: {
      url,
      table: c.storage.table,
      haTable: c.storage.ha_table,
      maxParallel: c.storage.max_parallel,
    },
  });
  const base = { redisUrl: c.storage.redis_url, prefix: c.storage.prefix };
  return {
    storage: {
      type: c.storage.type,
      ...base,
      ...(c.storage.type === 'postgresql' ? postgres(c.storage.connection_url) : {}),
    },
    haStorage: haType
      ? {
          type: haType,
          ...base,
          redisUrl: c.ha_storage.redis_url,
          ...(haType === 'postgresql' ? postgres(c.ha_storage.connection_url) : {}),
        }
      : null,
  };
}

/** Validates cross-field rules; throws ConfigError. */
export function gatewaySettings(c: GatewayConfig): GatewaySettings {
  const advertisementKeys = c.advertisement_key ? parseKeyList(c.advertisement_key) : [];
  if (advertisementKeys.length === 0) {
    throw new ConfigError('advertisement_key (LEADERWAY_ADVERTISEMENT_KEY): required: base64 of 32 bytes');
  }
  const verifyKeys = (c.advertisement_verify_key ? parseKeyList(c.advertisement_verify_key) : []).map(
    verifyKeyFromRaw,
  );
  if (verifyKeys.length === 0) {
    throw new ConfigError(
      'advertisement_verify_key (LEADERWAY_ADVERTISEMENT_VERIFY_KEY): required: the nodes’ Ed25519 public key (base64 of 32 bytes)',
    );
  }
  if (!c.identity.cert_file || !c.identity.key_file) {
    throw new ConfigError(
      'identity.cert_file and identity.key_file (LEADERWAY_GATEWAY_CERT_FILE, LEADERWAY_GATEWAY_KEY_FILE): required: the client certificate this gateway presents to the active node',
    );
  }
  if (c.upstream_connections < 1)
    throw new ConfigError('upstream_connections (LEADERWAY_UPSTREAM_CONNECTIONS): must be at least 1');
  const listener = listenerSettings(c.listener);
  return {
    nodeId: c.node_id,
    listener,
    metricsListen: metricsListen(c.metrics_address, [listener.listen]),
    ...storageSpecs(c),
    advertisementKeys,
    verifyKeys,
    identity: {
      certFile: c.identity.cert_file,
      keyFile: c.identity.key_file,
      minVersion: 'TLSv1.2',
      ciphers: undefined,
      clientCaFile: null,
      requireClientCert: false,
    },
    trustedProxies: parseCidrList(c.trusted_proxies),
    failoverWaitMs: c.failover_wait,
    drainDelayMs: c.drain_delay,
    shutdownTimeoutMs: c.shutdown_timeout,
    upstreamConnections: c.upstream_connections,
    readRouting: c.read_routing,
    logLevel: c.log_level,
  };
}
