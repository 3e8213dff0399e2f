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
import type { ReadRouting } from './router';

export interface GatewaySettings {
  nodeId: string;
  listener: ListenerSettings;
  /** The metrics listener (`GET /metrics`, no token), or null when off. */
  metricsListen: HostPort | null;
  redisUrl: string;
  haRedisUrl: string | null;
  prefix: string;
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
    redisUrl: c.storage.redis_url,
    haRedisUrl: c.ha_storage.redis_url || null,
    prefix: c.storage.prefix,
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
