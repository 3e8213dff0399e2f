/**
 * The gateway's edge, attacked from the load balancer's side without a token (issue 29): the
 * process survives connections reset at every stage of a request and of an upgrade, on a plain
 * listener (TLS ended at the load balancer) — the layout where one reset upgrade used to end it.
 */
import assert from 'node:assert/strict';
import * as net from 'node:net';
import { after, before, describe, it } from 'node:test';
import { type GatewayCluster, startGatewayCluster } from '../helpers/gateway-cluster';
import { call } from '../helpers/http';

const UPGRADE =
  'GET /v1/sys/events/subscribe HTTP/1.1\r\nHost: gw\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n' +
  'Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n';
const WRITE =
  'POST /v1/secret/data/x HTTP/1.1\r\nHost: gw\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{"da';

/** Connects, sends `bytes`, waits `afterMs`, then resets the connection (RST, not FIN). */
async function sendAndReset(port: number, bytes: string, afterMs: number): Promise<void> {
  const s = net.connect(port, '127.0.0.1');
  s.on('error', () => undefined);
  await new Promise((r) => s.once('connect', r));
  if (bytes) s.write(bytes);
  if (afterMs > 0) await new Promise((r) => setTimeout(r, afterMs));
  s.resetAndDestroy();
}

describe("the gateway's edge", () => {
  let c: GatewayCluster;

  before(async () => {
    c = await startGatewayCluster({ nodes: 1 });
  });
  after(async () => {
    await c?.stop();
  });

  it('survives connections reset at every stage of a request and an upgrade', async () => {
    const stages = [
      '',
      UPGRADE.slice(0, 20),
      UPGRADE.slice(0, UPGRADE.length - 2),
      UPGRADE,
      WRITE.slice(0, 30),
      WRITE,
      'GET /v1/sys/health HTTP/1.1\r\nHost: gw\r\n\r\n',
    ];
    for (let round = 0; round < 5; round++) {
      await Promise.all(
        stages.flatMap((bytes) => [0, 5, 50].map((ms) => sendAndReset(c.gw.port, bytes, ms))),
      );
    }
    await new Promise((r) => setTimeout(r, 500));
    assert.equal(c.gw.child.exitCode, null, `the gateway exited: ${c.gw.lines.slice(-5).join('\n')}`);
    assert.equal((await call(c.gw.url, '/v1/sys/health')).status, 200);
    assert.ok(!c.gw.lines.some((l) => /Unhandled 'error' event/.test(l)));
  });
});
