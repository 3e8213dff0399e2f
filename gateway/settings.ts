/** Settings the gateway derives from its configuration. */
import type { BlockList } from 'node:net';
import { type HostPort, parseCidrList, parseHostPort, parseKeyList } from '../shared/config/formats';
import type { GatewayConfig } from '../shared/config/gateway-schema';
import { ConfigError } from '../shared/config/load';

export interface GatewaySettings {
  nodeId: string;
  listen: HostPort;
  tls: { certFile: string; keyFile: string } | null;
  redisUrl: string;
  haRedisUrl: string | null;
  prefix: string;
  advertisementKeys: Buffer[];
  trustedProxies: BlockList;
  failoverWaitMs: number;
  drainDelayMs: number;
  shutdownTimeoutMs: number;
  upstreamConnections: number;
  logLevel: string;
}

/** Validates cross-field rules; throws ConfigError. */
export function gatewaySettings(c: GatewayConfig): GatewaySettings {
  const advertisementKeys = c.advertisement_key ? parseKeyList(c.advertisement_key) : [];
  if (advertisementKeys.length === 0) {
    throw new ConfigError('advertisement_key (LEADERWAY_ADVERTISEMENT_KEY): required: base64 of 32 bytes');
  }
  if ((c.listener.tls_cert_file === '') !== (c.listener.tls_key_file === '')) {
    throw new ConfigError(
      'listener.tls_cert_file and listener.tls_key_file (LEADERWAY_TLS_CERT_FILE, LEADERWAY_TLS_KEY_FILE): set both or neither',
    );
  }
  if (c.upstream_connections < 1)
    throw new ConfigError('upstream_connections (LEADERWAY_UPSTREAM_CONNECTIONS): must be at least 1');
  return {
    nodeId: c.node_id,
    listen: parseHostPort(c.listener.address) as HostPort,
    tls: c.listener.tls_cert_file
      ? { certFile: c.listener.tls_cert_file, keyFile: c.listener.tls_key_file }
      : null,
    redisUrl: c.storage.redis_url,
    haRedisUrl: c.ha_storage.redis_url || null,
    prefix: c.storage.prefix,
    advertisementKeys,
    trustedProxies: parseCidrList(c.trusted_proxies),
    failoverWaitMs: c.failover_wait,
    drainDelayMs: c.drain_delay,
    shutdownTimeoutMs: c.shutdown_timeout,
    upstreamConnections: c.upstream_connections,
    logLevel: c.log_level,
  };
}
