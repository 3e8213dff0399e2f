/** Helpers for tests that run several nodes: who is active, waiting for a new active. */
import Redis from 'ioredis';
import { type Advertisement, advertisementPath, decodeAdvertisement } from '../../shared/advertisement';
import { call } from './http';
import { type Proc, waitFor } from './procs';

/** The node whose sys/health says active (200), or undefined. */
export async function findActive(nodes: Proc[]): Promise<Proc | undefined> {
  const states = await Promise.all(
    nodes.map(async (n) => {
      if (n.child.exitCode !== null || n.child.signalCode !== null) return false;
      try {
        return (await call(n.url, '/v1/sys/health')).status === 200;
      } catch {
        return false;
      }
    }),
  );
  return nodes[states.indexOf(true)];
}

/** Waits until a node other than `not` is active and returns it. */
export function waitActive(nodes: Proc[], timeoutMs = 15_000, not?: Proc): Promise<Proc> {
  return waitFor(
    async () => {
      const a = await findActive(nodes.filter((n) => n !== not));
      return a;
    },
    timeoutMs,
    'an active node',
    100,
  );
}

/** Reads and decrypts the current leader's advertisement straight from Redis. */
export async function readAdvertisement(
  redisUrl: string,
  adKey: string,
  prefix = 'leaderway',
): Promise<Advertisement> {
  const r = new Redis(redisUrl, { lazyConnect: true });
  try {
    await r.connect();
    const uuid = await r.get(`{${prefix}}/core/lock`);
    if (!uuid) throw new Error('no lock holder');
    const raw = await r.getBuffer(`{${prefix}}/d/${advertisementPath(uuid)}`);
    if (!raw) throw new Error('no advertisement');
    const d = decodeAdvertisement(raw, advertisementPath(uuid), [Buffer.from(adKey, 'base64')]);
    if (!d.ok) throw new Error(`advertisement rejected: ${d.reason}`);
    return d.ad;
  } finally {
    r.disconnect();
  }
}

/** A raw Redis client for a test (caller disconnects). */
export async function rawRedis(url: string): Promise<Redis> {
  const r = new Redis(url, { lazyConnect: true });
  await r.connect();
  return r;
}
