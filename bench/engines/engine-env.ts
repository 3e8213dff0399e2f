/**
 * What both minimal proxies share: their configuration from the environment (set by the
 * engines section) and the hop-by-hop header list. They proxy to one leader's cluster listener
 * over mutual TLS 1.2, presenting a gateway client certificate and trusting only the advertised
 * certificate, as the gateway does, so the comparison isolates the proxy engine.
 */
import { readFileSync } from 'node:fs';

/** The engine's settings. */
export interface EngineEnv {
  port: number;
  /** `https://127.0.0.1:<cluster port>`. */
  target: string;
  /** The advertised cluster certificate: the only CA trusted. */
  caPem: string;
  /** The gateway client identity presented. */
  certPem: string;
  keyPem: string;
  /** The advertised cert's name (`fw-<uuid>`), checked against the server's certificate. */
  servername: string;
  connections: number;
}

function required(name: string): string {
  const v = process.env[name];
  if (!v) throw new Error(`${name} is required`);
  return v;
}

/** Reads LW_ENGINE_* (bench-only variables, not product configuration). */
export function engineEnv(): EngineEnv {
  return {
    port: Number(required('LW_ENGINE_PORT')),
    target: required('LW_ENGINE_TARGET'),
    caPem: readFileSync(required('LW_ENGINE_CA_FILE'), 'utf8'),
    certPem: readFileSync(required('LW_ENGINE_CERT_FILE'), 'utf8'),
    keyPem: readFileSync(required('LW_ENGINE_KEY_FILE'), 'utf8'),
    servername: required('LW_ENGINE_SERVERNAME'),
    connections: Number(process.env.LW_ENGINE_CONNECTIONS ?? '128'),
  };
}

/** Headers that apply to one connection only (RFC 9110 §7.6.1), plus Host. */
export const HOP_BY_HOP = new Set([
  'connection',
  'keep-alive',
  'proxy-connection',
  'te',
  'trailer',
  'transfer-encoding',
  'upgrade',
  'host',
]);

/** The line the orchestrator waits for (same shape as leaderway's logs). */
export function logListening(engine: string, port: number): void {
  process.stdout.write(`${JSON.stringify({ msg: 'listening', engine, port })}\n`);
}

/** Exit code of the http-proxy-3 proxy when the package is not installed (the section skips it). */
export const NOT_INSTALLED_EXIT = 3;
