/**
 * The same minimal proxy on http-proxy-3 (the http-proxy API the gateway design started from)
 * with a keep-alive `https.Agent` doing the mutual TLS. http-proxy-3 is not a dependency: install
 * it for the bench (see CANDIDATES); without it this exits with NOT_INSTALLED_EXIT.
 */
import http from 'node:http';
import https from 'node:https';
import * as path from 'node:path';
import { engineEnv, logListening, NOT_INSTALLED_EXIT } from './engine-env';

/** The part of http-proxy-3's API used here (loaded only if installed). */
interface ProxyServer {
  web(req: http.IncomingMessage, res: http.ServerResponse, opts?: object, cb?: (err: Error) => void): void;
  on(event: 'error', cb: (err: Error, req: http.IncomingMessage, res: unknown) => void): void;
}
type CreateProxyServer = (opts: Record<string, unknown>) => ProxyServer;

/**
 * Where to look: the project's node_modules (`npm install --no-save http-proxy-3@1.23.3`), then
 * .bench/engines-deps (`npm install --no-save --prefix .bench/engines-deps http-proxy-3@1.23.3`),
 * which survives the `npm install`/`npm ci` runs that prune an unsaved package.
 */
const CANDIDATES = [
  'http-proxy-3',
  path.resolve(__dirname, '..', '..', '.bench', 'engines-deps', 'node_modules', 'http-proxy-3'),
];

function load(): CreateProxyServer {
  for (const c of CANDIDATES) {
    try {
      return (require(c) as { createProxyServer: CreateProxyServer }).createProxyServer;
    } catch {
      // Try the next place.
    }
  }
  process.stderr.write('http-proxy-3 is not installed: npm install --no-save http-proxy-3@1.23.3\n');
  process.exit(NOT_INSTALLED_EXIT);
}

const createProxyServer = load();

const env = engineEnv();
const target = new URL(env.target);
// Agent options are merged into every connection's TLS options (servername included).
const agent = new https.Agent({
  keepAlive: true,
  keepAliveMsecs: 1_000,
  maxSockets: env.connections,
  maxFreeSockets: env.connections,
  ca: [env.caPem],
  cert: env.certPem,
  key: env.keyPem,
  servername: env.servername,
  rejectUnauthorized: true,
  minVersion: 'TLSv1.2',
  maxVersion: 'TLSv1.2',
});
const proxy = createProxyServer({
  target: { protocol: 'https:', host: target.hostname, port: Number(target.port) },
  agent,
  secure: true,
  xfwd: true,
});
proxy.on('error', (_err, _req, res) => {
  const r = res as http.ServerResponse;
  if (typeof r.writeHead !== 'function') return;
  if (!r.headersSent) r.writeHead(502).end();
  else r.destroy();
});

const server = http.createServer((req, res) => proxy.web(req, res));
server.keepAliveTimeout = 5_000;
server.listen(env.port, '127.0.0.1', () => logListening('http-proxy-3', env.port));
process.on('SIGTERM', () => process.exit(0));
