/**
 * A fake active node for tests that must see exactly what a gateway or a standby sends to the
 * leader: an mTLS listener with its own fresh cluster identity, advertised in Redis exactly as a
 * real active node does (lock value, fencing epoch, advertisement encrypted under the real
 * advertisement key). It records every request and answers as the test tells it to.
 */

import { readFileSync } from 'node:fs';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { createServer, type Server } from 'node:https';
import type { AddressInfo } from 'node:net';
import type { Duplex } from 'node:stream';
import { unseal } from '../../node/barrier/seal';
import { type ClusterIdentity, newClusterIdentity } from '../../node/ha/cluster-cert';
import { advertisementPath, encodeAdvertisement, LEADER_KEY_PREFIX } from '../../shared/advertisement';
import { signingKeyFromSeed } from '../../shared/crypto/signing';
import { RedisBackend } from '../../shared/storage/redis/redis-backend';
import { rawRedis } from '../helpers/cluster';
import { gatewayPkiFiles, type TestKeys } from '../helpers/procs';

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

/** The padding in the fake's refusal of an upgrade: larger than any socket buffer. */
export const UPGRADE_REFUSAL_BYTES = 1024 * 1024;

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
    // Like a real active node: standbys present this term's certificate, gateways their own.
    const gatewayCa = readFileSync((await gatewayPkiFiles()).caFile, 'utf8');
    this.server = createServer(
      {
        cert: this.identity.certPem,
        key: this.identity.keyPem,
        ca: [this.identity.certPem, gatewayCa],
        requestCert: true,
        rejectUnauthorized: true,
        minVersion: 'TLSv1.2',
      },
      (req, res) => this.onRequest(req, res),
    );
    this.server.on('upgrade', (req: IncomingMessage, socket: Duplex, head: Buffer) =>
      this.onUpgrade(req, socket, head),
    );
    await new Promise<void>((r) => this.server?.listen(0, '127.0.0.1', () => r()));
    this.port = (this.server.address() as AddressInfo).port;
  }

  /**
   * Takes the lock (overwriting any holder), bumps the epoch, stores its key behind the barrier
   * and writes the advertisement — exactly what an active node does, with the cluster's keys.
   */
  async install(redisUrl: string, keys: TestKeys, apiAddr: string): Promise<void> {
    const r = await rawRedis(redisUrl);
    const backend = new RedisBackend({ url: redisUrl, prefix: 'leaderway' });
    try {
      await backend.start();
      const uuid = this.identity.uuid;
      const u = await unseal(backend, Buffer.from(keys.sealKey, 'base64'));
      if (u.state !== 'unsealed') throw new Error(`fake leader: cannot open the barrier (${u.state})`);
      await u.storage.put(LEADER_KEY_PREFIX + uuid, { key: this.identity.keyDer });
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
          active_time: new Date().toISOString(),
        },
        [Buffer.from(keys.adKey, 'base64')],
        signingKeyFromSeed(Buffer.from(keys.signingKey, 'base64')),
      );
      await r.set(`{leaderway}/d/${advertisementPath(uuid)}`, ad);
      await r.publish('{leaderway}/events', JSON.stringify({ type: 'advertised', epoch: this.epoch }));
    } finally {
      r.disconnect();
      await backend.close();
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

  /**
   * Upgrade requests: `/v1/sys/events/subscribe` switches protocols (with headers no client may
   * see alongside the ones it needs) and echoes bytes; any other path is refused with a 403 whose
   * body is `UPGRADE_REFUSAL_BYTES` long.
   */
  private onUpgrade(req: IncomingMessage, socket: Duplex, head: Buffer): void {
    this.received.push({ method: req.method ?? '', url: req.url ?? '', headers: req.headers, body: '' });
    if (req.url === '/v1/sys/events/subscribe') {
      socket.write(
        'HTTP/1.1 101 Switching Protocols\r\nupgrade: websocket\r\nconnection: Upgrade\r\n' +
          'sec-websocket-accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\nx-leaderway-internal: must-not-leak\r\n' +
          'keep-alive: timeout=5\r\n\r\n',
      );
      if (head.length > 0) socket.write(head);
      socket.pipe(socket);
      return;
    }
    const body = JSON.stringify({ errors: ['permission denied'], pad: 'x'.repeat(UPGRADE_REFUSAL_BYTES) });
    socket.end(
      'HTTP/1.1 403 Forbidden\r\ncontent-type: application/json\r\nx-leaderway-internal: must-not-leak\r\n' +
        `content-length: ${Buffer.byteLength(body)}\r\n\r\n${body}`,
    );
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
