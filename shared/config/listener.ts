/**
 * The `listener "tcp"` stanza both the node and the gateway have, with OpenBao's key names:
 * address, TLS (certificate and key reloaded without a restart, minimum version, cipher
 * suites, optional client certificates), PROXY protocol, HTTP timeouts, and whether `/metrics`
 * is served without a token (`telemetry { unauthenticated_metrics_access }`, off as upstream).
 *
 * Timeout defaults, and why:
 *  - `http_idle_timeout` 620s: a load balancer reuses a backend connection it believes open; if
 *    the backend closed it first, the balancer answers 502. Load balancers' backend keep-alive:
 *    AWS ALB 60 s, Azure 4 min, F5 300 s, AWS NLB 350 s, GCP 600 s. Outlasting the longest by a
 *    margin makes the balancer always the one to close. (OpenBao: 5 min.)
 *  - `http_read_header_timeout` 10 s: a slow sender (slowloris) cannot hold a connection open
 *    without ever sending a request line. (OpenBao: 10 s.)
 *  - `http_read_timeout` 30 s: a whole request, body included. (OpenBao: 30 s.)
 *  - `http_write_timeout` 0 (none): writing an answer is bounded by the client reading it; a
 *    value cuts clients that stop reading. (OpenBao: 0.)
 */
import { readFileSync } from 'node:fs';
import type { BlockList } from 'node:net';
import { PROXY_BEHAVIORS, type ProxyProtocolSettings } from '../http/proxy-protocol';
import { type HostPort, parseCidrList, parseHostPort } from './formats';
import { ConfigError, type Schema, type SchemaEntry } from './load';

/** OpenBao's tls_min_version values and what Node calls them. */
const TLS_VERSIONS = { tls12: 'TLSv1.2', tls13: 'TLSv1.3' } as const;

/**
 * OpenBao (Go) cipher suite names → OpenSSL's, for TLS 1.2. TLS 1.3 suites are not configurable
 * upstream either.
 */
const CIPHER_SUITES: Record<string, string> = {
  TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256: 'ECDHE-ECDSA-AES128-GCM-SHA256',
  TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384: 'ECDHE-ECDSA-AES256-GCM-SHA384',
  TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256: 'ECDHE-RSA-AES128-GCM-SHA256',
  TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384: 'ECDHE-RSA-AES256-GCM-SHA384',
  TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256: 'ECDHE-ECDSA-CHACHA20-POLY1305',
  TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256: 'ECDHE-RSA-CHACHA20-POLY1305',
  TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305: 'ECDHE-ECDSA-CHACHA20-POLY1305',
  TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305: 'ECDHE-RSA-CHACHA20-POLY1305',
  TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA256: 'ECDHE-ECDSA-AES128-SHA256',
  TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA256: 'ECDHE-RSA-AES128-SHA256',
  TLS_RSA_WITH_AES_128_GCM_SHA256: 'AES128-GCM-SHA256',
  TLS_RSA_WITH_AES_256_GCM_SHA384: 'AES256-GCM-SHA384',
};

/** TLS for an API listener. */
export interface TlsSettings {
  certFile: string;
  keyFile: string;
  minVersion: 'TLSv1.2' | 'TLSv1.3';
  /** OpenSSL cipher list for TLS 1.2, or undefined for Node's defaults. */
  ciphers: string | undefined;
  /** Verify client certificates against this CA (PEM file), when set. */
  clientCaFile: string | null;
  requireClientCert: boolean;
}

/** Everything an API listener needs. */
export interface ListenerSettings {
  listen: HostPort;
  tls: TlsSettings | null;
  proxyProtocol: ProxyProtocolSettings | null;
  timeouts: { idleMs: number; readHeaderMs: number; readMs: number; writeMs: number };
  /** `GET /metrics` is answered without a token (otherwise 403: use the metrics listener). */
  unauthenticatedMetrics: boolean;
}

/** The listener keys common to the node and the gateway (`address` is added by each schema). */
export function listenerSchema(what: string): Schema {
  return {
    tls_cert_file: {
      doc: `PEM certificate for the ${what} listener. Without it plain HTTP (a warning is printed). Reloaded on SIGHUP and when the file changes.`,
      format: String,
      default: '',
      env: 'LEADERWAY_TLS_CERT_FILE',
    },
    tls_key_file: {
      doc: `PEM private key for the ${what} listener (reloaded with the certificate).`,
      format: String,
      default: '',
      env: 'LEADERWAY_TLS_KEY_FILE',
    },
    tls_min_version: {
      doc: 'Lowest TLS version accepted: tls12 or tls13.',
      format: ['tls12', 'tls13'],
      default: 'tls12',
      env: 'LEADERWAY_TLS_MIN_VERSION',
    },
    tls_cipher_suites: {
      doc: 'TLS 1.2 cipher suites (comma-separated, Go/IANA names as in OpenBao, e.g. TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256). Empty: Node’s defaults.',
      format: String,
      default: '',
      env: 'LEADERWAY_TLS_CIPHER_SUITES',
    },
    tls_require_and_verify_client_cert: {
      doc: 'Require a client certificate signed by tls_client_ca_file (for load balancers that authenticate themselves).',
      format: Boolean,
      default: false,
      env: 'LEADERWAY_TLS_REQUIRE_AND_VERIFY_CLIENT_CERT',
    },
    tls_client_ca_file: {
      doc: 'PEM CA bundle client certificates are verified against.',
      format: String,
      default: '',
      env: 'LEADERWAY_TLS_CLIENT_CA_FILE',
    },
    proxy_protocol_behavior: {
      doc: 'PROXY protocol (v1 and v2) on this listener: use_always, allow_authorized or deny_unauthorized (as OpenBao). Empty: off.',
      format: ['', ...PROXY_BEHAVIORS],
      default: '',
      env: 'LEADERWAY_PROXY_PROTOCOL_BEHAVIOR',
    },
    proxy_protocol_authorized_addrs: {
      doc: 'CIDRs (comma-separated) allowed to send a PROXY header (allow_authorized, deny_unauthorized): the load balancer.',
      format: 'cidr-list',
      default: '',
      env: 'LEADERWAY_PROXY_PROTOCOL_AUTHORIZED_ADDRS',
    },
    http_idle_timeout: {
      doc: 'Idle keep-alive connections are closed after this. Must outlast the load balancer’s backend keep-alive (default above GCP’s 600 s).',
      format: 'duration',
      default: '620s',
      env: 'LEADERWAY_HTTP_IDLE_TIMEOUT',
    },
    http_read_header_timeout: {
      doc: 'A client must send its request headers within this (slowloris guard).',
      format: 'duration',
      default: '10s',
      env: 'LEADERWAY_HTTP_READ_HEADER_TIMEOUT',
    },
    http_read_timeout: {
      doc: 'A whole request (headers and body) must arrive within this.',
      format: 'duration',
      default: '30s',
      env: 'LEADERWAY_HTTP_READ_TIMEOUT',
    },
    http_write_timeout: {
      doc: 'A response must be written within this; 0: no limit.',
      format: 'duration',
      default: '0s',
      env: 'LEADERWAY_HTTP_WRITE_TIMEOUT',
    },
    telemetry: {
      unauthenticated_metrics_access: {
        doc: `Serve GET /metrics on the ${what} listener to anyone (OpenBao's listener telemetry setting). Off: 403; Prometheus scrapes the metrics listener (LEADERWAY_METRICS_ADDR) instead.`,
        format: Boolean,
        default: false,
        env: 'LEADERWAY_UNAUTHENTICATED_METRICS_ACCESS',
      },
    },
  };
}

/** The config shape of `listenerSchema` (plus `address`). */
export interface ListenerConfig {
  address: string;
  tls_cert_file: string;
  tls_key_file: string;
  tls_min_version: 'tls12' | 'tls13';
  tls_cipher_suites: string;
  tls_require_and_verify_client_cert: boolean;
  tls_client_ca_file: string;
  proxy_protocol_behavior: '' | (typeof PROXY_BEHAVIORS)[number];
  proxy_protocol_authorized_addrs: string;
  http_idle_timeout: number;
  http_read_header_timeout: number;
  http_read_timeout: number;
  http_write_timeout: number;
  telemetry: { unauthenticated_metrics_access: boolean };
}

/** Validates cross-field rules of a listener stanza; throws ConfigError. */
export function listenerSettings(c: ListenerConfig): ListenerSettings {
  if ((c.tls_cert_file === '') !== (c.tls_key_file === '')) {
    throw new ConfigError(
      'listener.tls_cert_file and listener.tls_key_file (LEADERWAY_TLS_CERT_FILE, LEADERWAY_TLS_KEY_FILE): set both or neither',
    );
  }
  if (c.tls_require_and_verify_client_cert && !c.tls_client_ca_file) {
    throw new ConfigError(
      'listener.tls_client_ca_file (LEADERWAY_TLS_CLIENT_CA_FILE): required with tls_require_and_verify_client_cert',
    );
  }
  if ((c.tls_require_and_verify_client_cert || c.tls_client_ca_file) && !c.tls_cert_file) {
    throw new ConfigError(
      'listener.tls_client_ca_file (LEADERWAY_TLS_CLIENT_CA_FILE): needs TLS on the listener',
    );
  }
  if (c.tls_client_ca_file) {
    try {
      readFileSync(c.tls_client_ca_file);
    } catch (err) {
      throw new ConfigError(
        `listener.tls_client_ca_file (LEADERWAY_TLS_CLIENT_CA_FILE): cannot read it: ${(err as Error).message}`,
      );
    }
  }
  const suites = c.tls_cipher_suites
    .split(',')
    .map((x) => x.trim())
    .filter((x) => x !== '');
  const unknown = suites.filter((x) => !CIPHER_SUITES[x]);
  if (unknown.length > 0) {
    throw new ConfigError(
      `listener.tls_cipher_suites (LEADERWAY_TLS_CIPHER_SUITES): unknown or insecure suite(s): ${unknown.join(', ')}`,
    );
  }
  let authorized: BlockList | null = null;
  if (c.proxy_protocol_behavior) {
    authorized = parseCidrList(c.proxy_protocol_authorized_addrs);
    if (c.proxy_protocol_behavior !== 'use_always' && c.proxy_protocol_authorized_addrs.trim() === '') {
      throw new ConfigError(
        `listener.proxy_protocol_authorized_addrs (LEADERWAY_PROXY_PROTOCOL_AUTHORIZED_ADDRS): required with ${c.proxy_protocol_behavior}`,
      );
    }
  }
  if (c.http_read_header_timeout > c.http_read_timeout && c.http_read_timeout > 0) {
    throw new ConfigError(
      'listener.http_read_header_timeout (LEADERWAY_HTTP_READ_HEADER_TIMEOUT): must not exceed http_read_timeout',
    );
  }
  return {
    listen: parseHostPort(c.address) as HostPort,
    tls: c.tls_cert_file
      ? {
          certFile: c.tls_cert_file,
          keyFile: c.tls_key_file,
          minVersion: TLS_VERSIONS[c.tls_min_version],
          ciphers: suites.length ? suites.map((x) => CIPHER_SUITES[x]).join(':') : undefined,
          clientCaFile: c.tls_client_ca_file || null,
          requireClientCert: c.tls_require_and_verify_client_cert,
        }
      : null,
    proxyProtocol:
      c.proxy_protocol_behavior && authorized ? { behavior: c.proxy_protocol_behavior, authorized } : null,
    timeouts: {
      idleMs: c.http_idle_timeout,
      readHeaderMs: c.http_read_header_timeout,
      readMs: c.http_read_timeout,
      writeMs: c.http_write_timeout,
    },
    unauthenticatedMetrics: c.telemetry.unauthenticated_metrics_access,
  };
}

/**
 * The `metrics_address` entry both schemas have: the metrics listener
 * (shared/telemetry/metrics-listener.ts). `otherwise`: where the metrics are without it.
 */
export function metricsAddressSchema(otherwise: string): SchemaEntry {
  return {
    doc: `Metrics listener host:port: plain HTTP serving only GET /metrics, without a token, for Prometheus on the cluster network. Keep it out of the load balancer and every Service. Empty: off (${otherwise}).`,
    format: 'optional-host-port',
    default: '',
    env: 'LEADERWAY_METRICS_ADDR',
  };
}

/**
 * The metrics listener's address, or null when `metrics_address` is empty. Refused when it takes
 * the port of another of the process's listeners: the cluster listener binds only once the node
 * is active, so the clash would otherwise surface only at the first failover.
 */
export function metricsListen(address: string, others: ReadonlyArray<HostPort | null>): HostPort | null {
  if (!address) return null;
  const m = parseHostPort(address) as HostPort;
  const any = (h: string) => h === '0.0.0.0' || h === '::';
  const clash = others.some(
    (o) => o && m.port !== 0 && o.port === m.port && (o.host === m.host || any(o.host) || any(m.host)),
  );
  if (clash)
    throw new ConfigError(
      'metrics_address (LEADERWAY_METRICS_ADDR): must not use the port of the API or cluster listener',
    );
  return m;
}
