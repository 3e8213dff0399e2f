/**
 * Settings the node derives from its configuration, with upstream's rules and error messages:
 * api_addr is required in HA mode and must carry a scheme; cluster_addr defaults to api_addr's
 * host with port + 1, is always https, and must differ from api_addr; the cluster listener
 * defaults to the API listener's IP with port + 1.
 */

import { type HostPort, parseHostPort, parseKeyList } from '../shared/config/formats';
import { type ListenerSettings, listenerSettings, metricsListen } from '../shared/config/listener';
import { ConfigError } from '../shared/config/load';
import type { NodeConfig } from '../shared/config/node-schema';
import {
  type SigningKey,
  signingKeyFromSeed,
  type VerifyKey,
  verifyKeyFromRaw,
} from '../shared/crypto/signing';
import type { StorageSpec } from '../shared/storage/open';
import { parseMinReplicas } from '../shared/storage/redis/replication';
import { parseNamePatterns } from './ha/gateway-names';
import type { GatewaySettings } from './ha/gateway-trust';

export interface NodeSettings {
  nodeId: string;
  listener: ListenerSettings;
  /** Null when clustering is disabled. */
  clusterListen: HostPort | null;
  /** The metrics listener (`GET /metrics`, no token), or null when off. */
  metricsListen: HostPort | null;
  apiAddr: string;
  clusterAddr: string;
  sealKey: Buffer;
  advertisementKeys: Buffer[];
  /** Signs this node's advertisements (nodes only). */
  signingKey: SigningKey;
  /** Advertisements signed by these are trusted (the signing key's own always is). */
  verifyKeys: VerifyKey[];
  /** Also write and read the previous, unsigned format (rolling upgrade). */
  legacyAdvertisement: boolean;
  /** Which gateways the cluster listener admits, or null (no gateway can connect). */
  gateways: GatewaySettings | null;
  storage: StorageSpec;
  /** Set for split storage: the lock lives only here. */
  haStorage: StorageSpec | null;
  forwarding: boolean;
  /** Standbys serve reads themselves (LEADERWAY_DISABLE_STANDBY_READS=false, the default). */
  standbyReads: boolean;
  /** How long a standby holds and retries a forwarded request the active did not serve. */
  failoverWaitMs: number;
  lockTtlMs: number;
  /** Take the lock over from a holder whose Redis connection is gone this long (0: off). */
  livenessGraceMs: number;
  stepDownCooldownMs: number;
  shutdownTimeoutMs: number;
  maxRequestSize: number;
  /** Bytes of stored secrets answered at once, and how long a read waits for room. */
  responseBudget: { bytes: number; waitMs: number };
  logLevel: string;
}

function defaultPort(u: URL): number {
  if (u.port) return Number(u.port);
  return u.protocol === 'https:' ? 443 : 80;
}

/** Derives the cluster address (always https) from the config or from api_addr. */
export function deriveClusterAddr(apiAddr: string, clusterAddr: string): string {
  if (clusterAddr) {
    const withScheme = /^[a-z][a-z0-9+.-]*:\/\//i.test(clusterAddr) ? clusterAddr : `https://${clusterAddr}`;
    let u: URL;
    try {
      u = new URL(withScheme);
    } catch {
      throw new ConfigError(
        'cluster_addr (BAO_CLUSTER_ADDR or VAULT_CLUSTER_ADDR): must be host:port or a URL',
      );
    }
    if (!u.port)
      throw new ConfigError('cluster_addr (BAO_CLUSTER_ADDR or VAULT_CLUSTER_ADDR): must include a port');
    return `https://${u.host}`;
  }
  const api = new URL(apiAddr);
  // URL.hostname keeps IPv6 brackets ([::1]), so it can be used as is.
  return `https://${api.hostname}:${defaultPort(api) + 1}`;
}

/**
 * Which gateways may connect. A blank name list with a CA set is refused rather than read as
 * "no gateway" (a CA nobody may use is a mistake that would surface only as an outage) or as the
 * default (a list the operator emptied must not quietly admit something). An empty environment
 * variable is unset, as every one is, so the default applies.
 */
function gatewaySettings(c: NodeConfig): GatewaySettings | null {
  let allowedNames: GatewaySettings['allowedNames'];
  try {
    allowedNames = parseNamePatterns(c.gateway_allowed_names);
  } catch (err) {
    throw new ConfigError(
      `gateway_allowed_names (LEADERWAY_GATEWAY_ALLOWED_NAMES): ${(err as Error).message}`,
    );
  }
  if (!c.gateway_ca_file) {
    if (c.gateway_crl_file)
      throw new ConfigError('gateway_crl_file (LEADERWAY_GATEWAY_CRL_FILE): needs gateway_ca_file');
    return null;
  }
  if (allowedNames.length === 0) {
    throw new ConfigError(
      'gateway_allowed_names (LEADERWAY_GATEWAY_ALLOWED_NAMES): empty, so no gateway could connect: list the names gateway certificates carry, or unset gateway_ca_file',
    );
  }
  return { caFile: c.gateway_ca_file, allowedNames, crlFile: c.gateway_crl_file || null };
}

/** Validates cross-field rules and derives the node's settings. Throws ConfigError. */
export function nodeSettings(c: NodeConfig): NodeSettings {
  const listener = listenerSettings(c.listener);
  const listen = listener.listen;
  if (!c.api_addr)
    throw new ConfigError('missing API address, please set in configuration or via environment');
  const sealKeys = c.seal.key ? parseKeyList(c.seal.key) : [];
  if (sealKeys.length !== 1) {
    throw new ConfigError('seal.key (LEADERWAY_SEAL_KEY): required: base64 of exactly 32 bytes');
  }
  const advertisementKeys = c.advertisement_key ? parseKeyList(c.advertisement_key) : [];
  if (advertisementKeys.length === 0) {
    throw new ConfigError('advertisement_key (LEADERWAY_ADVERTISEMENT_KEY): required: base64 of 32 bytes');
  }
  // Gateways hold the advertisement key: were it the seal key, every gateway could unseal.
  if (advertisementKeys.some((k) => k.equals(sealKeys[0] as Buffer))) {
    throw new ConfigError('advertisement_key (LEADERWAY_ADVERTISEMENT_KEY): must differ from the seal key');
  }
  const seeds = c.advertisement_signing_key ? parseKeyList(c.advertisement_signing_key) : [];
  if (seeds.length !== 1) {
    throw new ConfigError(
      'advertisement_signing_key (LEADERWAY_ADVERTISEMENT_SIGNING_KEY): required: base64 of one 32-byte Ed25519 seed (`leaderway keys` makes one)',
    );
  }
  if ([sealKeys[0], ...advertisementKeys].some((k) => k?.equals(seeds[0] as Buffer))) {
    throw new ConfigError(
      'advertisement_signing_key (LEADERWAY_ADVERTISEMENT_SIGNING_KEY): must differ from the seal and advertisement keys',
    );
  }
  const signingKey = signingKeyFromSeed(seeds[0] as Buffer);
  const verifyKeys = (c.advertisement_verify_key ? parseKeyList(c.advertisement_verify_key) : []).map(
    verifyKeyFromRaw,
  );
  if (!verifyKeys.some((k) => k.id.equals(signingKey.id)))
    verifyKeys.unshift(verifyKeyFromRaw(signingKey.publicRaw));
  const replication = {
    minReplicas: parseMinReplicas(c.storage.min_replicas),
    waitTimeoutMs: c.storage.wait_timeout,
  };
  const postgres = {
    url: c.storage.connection_url,
    table: c.storage.table,
    haTable: c.storage.ha_table,
    maxParallel: c.storage.max_parallel,
  };
  const clusterAddr = c.disable_clustering ? '' : deriveClusterAddr(c.api_addr, c.cluster_addr);
  if (clusterAddr && new URL(clusterAddr).host === new URL(c.api_addr).host) {
    throw new ConfigError('cluster_addr: the cluster address must differ from the API address (api_addr)');
  }
  const clusterListen = c.disable_clustering
    ? null
    : c.listener.cluster_address
      ? (parseHostPort(c.listener.cluster_address) as HostPort)
      : { host: listen.host, port: listen.port + 1 };
  if (clusterListen && clusterListen.port > 65535) {
    throw new ConfigError(
      'listener.cluster_address (LEADERWAY_CLUSTER_LISTEN_ADDR): API port + 1 is out of range; set it',
    );
  }
  const haType =
    c.ha_storage.type || (c.ha_storage.redis_url ? 'redis' : c.ha_storage.connection_url ? 'postgresql' : '');
  if (c.ha_storage.type === 'redis' && !c.ha_storage.redis_url) {
    throw new ConfigError(
      'ha_storage.redis_url (LEADERWAY_HA_REDIS_URL): required when LEADERWAY_HA_STORAGE=redis',
    );
  }
  if (c.ha_storage.type === 'postgresql' && !c.ha_storage.connection_url) {
    throw new ConfigError(
      'ha_storage.connection_url (LEADERWAY_HA_POSTGRESQL_URL): required when LEADERWAY_HA_STORAGE=postgresql',
    );
  }
  if (c.lock_ttl < 300) throw new ConfigError('lock_ttl (LEADERWAY_LOCK_TTL): must be at least 300ms');
  if (c.liveness_grace > c.lock_ttl)
    throw new ConfigError('liveness_grace (LEADERWAY_LIVENESS_GRACE): must not exceed lock_ttl');
  return {
    nodeId: c.node_id,
    listener,
    clusterListen,
    metricsListen: metricsListen(c.metrics_address, [listen, clusterListen]),
    apiAddr: c.api_addr,
    clusterAddr,
    sealKey: sealKeys[0] as Buffer,
    advertisementKeys,
    signingKey,
    verifyKeys,
    legacyAdvertisement: c.advertisement_legacy,
    gateways: gatewaySettings(c),
    storage: {
      type: c.storage.type,
      redisUrl: c.storage.redis_url,
      prefix: c.storage.prefix,
      replication,
      ...(c.storage.type === 'postgresql' ? { postgres } : {}),
    },
    haStorage: haType
      ? {
          type: haType as StorageSpec['type'],
          redisUrl: c.ha_storage.redis_url,
          prefix: c.storage.prefix,
          replication,
          ...(haType === 'postgresql' ? { postgres: { ...postgres, url: c.ha_storage.connection_url } } : {}),
        }
      : null,
    forwarding: c.request_forwarding,
    standbyReads: !c.disable_standby_reads,
    failoverWaitMs: c.failover_wait,
    lockTtlMs: c.lock_ttl,
    livenessGraceMs: c.liveness_grace,
    stepDownCooldownMs: c.step_down_cooldown,
    shutdownTimeoutMs: c.shutdown_timeout,
    maxRequestSize: c.max_request_size,
    responseBudget: { bytes: c.response_budget, waitMs: c.response_budget_wait },
    logLevel: c.log_level,
  };
}
