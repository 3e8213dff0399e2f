/**
 * The bare proxy on an undici `Pool` (`pool.stream`): the engine the gateway is built on, with
 * nothing else — no leader watching, retries, metrics or header policy beyond hop-by-hop
 * removal and X-Forwarded-For. Run by the engines section: `node --import tsx bench/engines/undici-proxy.ts`.
 */
import http from 'node:http';
import type { Writable } from 'node:stream';
import { type Dispatcher, Pool } from 'undici';
import { engineEnv, HOP_BY_HOP, logListening } from './engine-env';

const env = engineEnv();
/** LW_ENGINE_H2=1: HTTP/2 to the leader (a prototype of a next design, measured by the engines section). */
const h2 = process.env.LW_ENGINE_H2 === '1';
const pool = new Pool(env.target, {
  // Over HTTP/2 one connection multiplexes many requests.
  connections: h2 ? 4 : env.connections,
  pipelining: h2 ? 128 : 1,
  allowH2: h2,
  keepAliveTimeout: 4_000,
  connect: {
    ca: [env.caPem],
    cert: env.certPem,
    key: env.keyPem,
    servername: env.servername,
    rejectUnauthorized: true,
    minVersion: 'TLSv1.2',
    maxVersion: 'TLSv1.2',
    ALPNProtocols: h2 ? ['h2'] : ['http/1.1'],
  },
});

const server = http.createServer((req, res) => {
  const headers: string[] = [];
  for (const name in req.headers) {
    const v = req.headers[name];
    if (v === undefined || HOP_BY_HOP.has(name)) continue;
    if (Array.isArray(v)) for (const x of v) headers.push(name, x);
    else headers.push(name, v);
  }
  headers.push('x-forwarded-for', req.socket.remoteAddress ?? '');
  const hasBody =
    req.headers['content-length'] !== undefined || req.headers['transfer-encoding'] !== undefined;
  pool
    .stream(
      {
        method: req.method as Dispatcher.HttpMethod,
        path: req.url ?? '/',
        headers,
        body: hasBody ? req : null,
      },
      ({ statusCode, headers: h }) => {
        const out: Record<string, string | string[]> = {};
        for (const name in h) {
          const v = h[name];
          if (v !== undefined && !HOP_BY_HOP.has(name)) out[name] = v;
        }
        res.writeHead(statusCode, out);
        return res as unknown as Writable;
      },
    )
    .catch(() => {
      if (!res.headersSent) res.writeHead(502).end();
      else res.destroy();
    });
});
server.keepAliveTimeout = 5_000;
server.listen(env.port, '127.0.0.1', () => logListening('undici', env.port));
process.on('SIGTERM', () => process.exit(0));
