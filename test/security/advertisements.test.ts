/**
 * The gateway (and the standbys) against forged and replayed leader advertisements: whatever is
 * written into Redis, nothing is routed to an advertisement that does not authenticate under the
 * advertisement key, does not match the lock holder and its epoch, or is older than an epoch
 * already seen. Addresses in the forgeries are traps that count connection attempts.
 */
import assert from 'node:assert/strict';
import { randomBytes, randomUUID } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import {
  advertisementPath,
  encodeAdvertisement,
  encodeLegacyAdvertisement,
} from '../../shared/advertisement';
import { keyId, seal } from '../../shared/crypto/aead';
import { signingKeyFromSeed } from '../../shared/crypto/signing';
import { rawRedis } from '../helpers/cluster';
import { call } from '../helpers/http';
import { type Proc, waitFor } from '../helpers/procs';
import { CountingServer } from './counting-server';
import { type SecurityCluster, startSecurityCluster } from './fixture';

const LOCK = '{leaderway}/core/lock';
const EPOCH = '{leaderway}/core/lock-epoch';
/** A forged or replayed lock is held this long: longer than the checks that use it. */
const FORGED_PX_MS = 60_000;

describe('security: forged and replayed advertisements', () => {
  let c: SecurityCluster;
  const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

  before(async () => {
    c = await startSecurityCluster('lwsecret-adv-');
  });

  after(async () => {
    await c?.stop();
  });

  it('the gateway and the standbys never route to a forged advertisement', async () => {
    const { redis, keys, nodes, gw, token, healthy } = c;
    await healthy();
    const trap = new CountingServer();
    await trap.start();
    const r = await rawRedis(redis.url);
    const ad = (uuid: string, epoch: number) => ({
      uuid,
      epoch,
      node_id: 'forged',
      api_addr: `http://127.0.0.1:${trap.port}`,
      cluster_addr: `https://127.0.0.1:${trap.port}`,
      cert: '',
      active_time: new Date().toISOString(),
    });
    const adKey = Buffer.from(keys.adKey, 'base64');
    const signer = signingKeyFromSeed(Buffer.from(keys.signingKey, 'base64'));
    const stranger = signingKeyFromSeed(randomBytes(32));
    const unsigned = (u: string, e: number) => {
      // What a gateway could make: it holds the advertisement key, not the signing key.
      const path = advertisementPath(u);
      const body = seal(adKey, Buffer.from(JSON.stringify({ ad: ad(u, e) })), path);
      return Buffer.concat([Buffer.from([0x02]), keyId(adKey), body]);
    };
    const forgeries: Record<string, (uuid: string, epoch: number) => Buffer> = {
      garbage: () => randomBytes(200),
      'plain JSON': (u, e) => Buffer.from(JSON.stringify(ad(u, e))),
      'wrong key': (u, e) => encodeAdvertisement(ad(u, e), [randomBytes(32)], signer),
      'encrypted with the advertisement key, unsigned': unsigned,
      'signed by another key': (u, e) => encodeAdvertisement(ad(u, e), [adKey], stranger),
      'the previous (unsigned) format at the new path': (u, e) =>
        encodeLegacyAdvertisement({ ...ad(u, e), key: '' }, [adKey]),
      'moved from another path': (_u, e) => encodeAdvertisement(ad(randomUUID(), e), [adKey], signer),
      'epoch other than the lock’s': (u, e) => encodeAdvertisement(ad(u, e - 1), [adKey], signer),
    };
    try {
      for (const [kind, forge] of Object.entries(forgeries)) {
        const uuid = randomUUID();
        const epoch = await r.incr(EPOCH);
        await r.set(LOCK, uuid, 'PX', FORGED_PX_MS);
        await r.set(`{leaderway}/d/${advertisementPath(uuid)}`, forge(uuid, epoch));
        await r.publish('{leaderway}/events', JSON.stringify({ type: 'advertised', epoch }));
        const fresh = await c.freshGateway(`gw-${kind.replace(/\W+/g, '-')}`);
        // To the standby a write: it serves reads itself, from storage, without any leader.
        const ask = (target: Proc) =>
          call(target.url, '/v1/secret/data/sec', {
            token,
            ...(target === nodes[0] ? { body: { data: { v: 1 } } } : {}),
          });
        // Both gateways at once (each holds the request its failover wait, then 503s; the fresh
        // one read the lock and the forgery before it listened), then the standby, as before.
        const atGateways = await Promise.all([gw, fresh].map(async (g) => [g, await ask(g)] as const));
        for (const [target, res] of [...atGateways, [nodes[0]!, await ask(nodes[0]!)] as const]) {
          assert.equal(res.status, 503, `${kind}: ${target.name} answered ${res.status}`);
          assert.ok(res.headers['retry-after'], `${kind}: Retry-After`);
        }
        assert.equal((await call(fresh.url, '/-/ready')).status, 503, `${kind}: fresh gateway ready`);
        await fresh.stop('SIGKILL');
      }
      assert.equal(trap.connections, 0, 'a forged leader address was contacted');
    } finally {
      await r.del(LOCK);
      r.disconnect();
      await trap.stop();
    }
    await healthy();
  });

  it('a replayed advertisement of an older epoch is not routed to', async (t) => {
    const { redis, gw, token, healthy } = c;
    const a = await healthy();
    const r = await rawRedis(redis.url);
    const uuid1 = (await r.get(LOCK)) as string;
    const epoch1 = Number(await r.get(EPOCH));
    const blob1 = (await r.getBuffer(`{leaderway}/d/${advertisementPath(uuid1)}`)) as Buffer;
    assert.ok(uuid1 && blob1);
    assert.equal((await call(gw.url, '/v1/sys/step-down', { method: 'PUT', token })).status, 204);
    await healthy();
    const epoch2 = Number(await r.get(EPOCH));
    assert.ok(epoch2 > epoch1);
    // The old leader's cluster port is its listener for gateways now (its own certificate, not
    // the replayed one's): stop it, and listen there to catch any attempt to use the replay.
    await a.stop('SIGKILL');
    const trap = new CountingServer();
    await trap.start(a.clusterPort);
    const replay = async () => {
      await r.set(LOCK, uuid1, 'PX', FORGED_PX_MS);
      await r.set(`{leaderway}/d/${advertisementPath(uuid1)}`, blob1);
      await r.publish('{leaderway}/events', JSON.stringify({ type: 'advertised', epoch: epoch1 }));
    };
    const refused = async (g: Proc, what: string) => {
      await waitFor(async () => (await call(g.url, '/-/ready')).status === 503, 5_000, `${what}: not ready`);
      const res = await call(g.url, '/v1/secret/data/sec', { token });
      assert.equal(res.status, 503, `${what}: answered ${res.status}`);
    };
    try {
      // 1. The epoch counter is intact: the replay names epoch1 while the lock's epoch is newer.
      await replay();
      const fresh = await c.freshGateway('gw-fresh');
      await refused(gw, 'running gateway, counter intact');
      await refused(fresh, 'fresh gateway, counter intact');
      // This gateway never saw epoch2: it is the "naive" case below, not this one.
      await fresh.stop('SIGKILL');
      // 2. The counter was rolled back too (a restored backup): a gateway that saw epoch2 refuses.
      await r.set(EPOCH, String(epoch1));
      await replay();
      await refused(gw, 'running gateway, counter rolled back');
      assert.equal(trap.connections, 0, 'a replayed leader address was contacted');
      // A gateway that never saw a newer epoch cannot tell; only the per-term certificate
      // protects it (no node serves the old identity). Measured, not asserted beyond "no 2xx".
      const naive = await c.freshGateway('gw-naive');
      await sleep(1_500);
      const res = await call(naive.url, '/v1/secret/data/sec', { token });
      assert.ok(res.status >= 500, `a naive gateway served a replay: ${res.status}`);
      t.diagnostic(
        `fresh gateway with the epoch counter rolled back: /-/ready ${(await call(naive.url, '/-/ready')).status}, ` +
          `request ${res.status}, connection attempts to the old address ${trap.connections}`,
      );
    } finally {
      await r.set(EPOCH, String(epoch2));
      await r.del(LOCK, `{leaderway}/d/${advertisementPath(uuid1)}`);
      r.disconnect();
      await trap.stop();
    }
    await healthy();
  });
});
