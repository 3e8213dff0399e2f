/**
 * A fake active node for tests that must see exactly what a gateway or a standby sends to the
 * leader: an mTLS listener with its own fresh cluster identity, advertised in Redis exactly as a
 * real active node does (lock value, fencing epoch, advertisement encrypted under the real
 * advertisement key). It records every request and answers as the test tells it to.
 */

import type { IncomingMessage, ServerResponse } from 'node:http';
import { createServer, type Server } from 'node:https';
import type { AddressInfo } from 'node:net';
import { type ClusterIdentity, newClusterIdentity } from '../../node/ha/cluster-cert';
import { advertisementPath, encodeAdvertisement } from '../../shared/advertisement';
import { rawRedis } from '../helpers/cluster';

/** How the fake answers. */
export type FakeMode =
  /** 200 with a JSON body and internal-looking response headers (which must not reach clients). */
  | 'ok'
  /** Reads the whole request, then never answers (a frozen or partitioned leader). */
  | 'hang'
  /** Reads the whole request, then drops the connection without answering (a crash mid-request). */
  | 'drop';

/** A request as the fake leader received it. */
export interface Received {
  method: string;
  url: string;
  headers: IncomingMessage['headers'];
  body: string;
}

/** How long the fake holds the lock: far longer than any test using it. */
const LOCK_PX_MS = 120_000;

export class FakeLeader {
  readonly received: Received[] = [];
  mode: FakeMode = 'ok';
  identity!: ClusterIdentity;
  epoch = 0;
  private server: Server | undefined;
  port = 0;
  private readonly hung: ServerResponse[] = [];

  async start(): Promise<void> {
    this.identity = await newClusterIdentity();
    this.server = createServer(
      {
        cert: this.identity.certPem,
        key: this.identity.keyPem,
        ca: [this.identity.certPem],
        requestCert: true,
        rejectUnauthorized: true,
        minVersion: 'TLSv1.2',
      },
      (req, res) => this.onRequest(req, res),
    );
    await new Promise<void>((r) => this.server?.listen(0, '127.0.0.1', () => r()));
    this.port = (this.server.address() as AddressInfo).port;
  }

  /** Takes the lock (overwriting any holder), bumps the epoch and writes the advertisement. */
  async install(redisUrl: string, adKey: string, apiAddr: string): Promise<void> {
    const r = await rawRedis(redisUrl);
    try {
      const uuid = this.identity.uuid;
      this.epoch = await r.incr('{leaderway}/core/lock-epoch');
      await r.set('{leaderway}/core/lock', uuid, 'PX', LOCK_PX_MS);
      const ad = encodeAdvertisement(
        {
          uuid,
          epoch: this.epoch,
          node_id: `fake-${uuid.slice(0, 8)}`,
          api_addr: apiAddr,
          cluster_addr: `https://127.0.0.1:${this.port}`,
          cert: this.identity.certDer,
          key: this.identity.keyDer,
          active_time: new Date().toISOString(),
        },
        [Buffer.from(adKey, 'base64')],
      );
      await r.set(`{leaderway}/d/${advertisementPath(uuid)}`, ad);
      await r.publish('{leaderway}/events', JSON.stringify({ type: 'advertised', epoch: this.epoch }));
    } finally {
      r.disconnect();
    }
  }

  /** Requests received for `path` (exact URL match). */
  count(url: string): number {
    return this.received.filter((x) => x.url === url).length;
  }

  async stop(): Promise<void> {
    for (const res of this.hung) res.destroy();
    this.server?.closeAllConnections();
    await new Promise<void>((r) => (this.server ? this.server.close(() => r()) : r()));
  }

  private onRequest(req: IncomingMessage, res: ServerResponse): void {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      this.received.push({
        method: req.method ?? '',
        url: req.url ?? '',
        headers: req.headers,
        body: Buffer.concat(chunks).toString('utf8'),
      });
      if (this.mode === 'hang') {
        this.hung.push(res);
        return;
      }
      if (this.mode === 'drop') {
        req.socket.destroy();
        return;
      }
      const body = JSON.stringify({ data: { fake: true } });
      res.writeHead(200, {
        'content-type': 'application/json',
        'content-length': String(Buffer.byteLength(body)),
        'x-leaderway-not-served': 'LW_ERR_NOT_ACTIVE',
        'x-leaderway-internal': 'must-not-leak',
      });
      res.end(body);
    });
  }
}
