/** Helpers for tests that run several nodes: who is active, waiting for a new active. */

import { readFileSync } from 'node:fs';
import Redis from 'ioredis';
import { unseal } from '../../node/barrier/seal';
import {
  type Advertisement,
  advertisementPath,
  decodeAdvertisement,
  LEADER_KEY_PREFIX,
} from '../../shared/advertisement';
import { verifyKeyFromRaw } from '../../shared/crypto/signing';
import { derToPem } from '../../shared/leader/leader-client';
import type { Backend } from '../../shared/storage/backend';
import { RedisBackend } from '../../shared/storage/redis/redis-backend';
import { call } from './http';
import { gatewayPkiFiles, type Proc, type TestKeys, waitFor } from './procs';

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

/** Reads, decrypts and verifies the current leader's advertisement straight from Redis. */
export async function readAdvertisement(
  redisUrl: string,
  keys: { adKey: string; verifyKey: string },
  prefix = 'leaderway',
): Promise<Advertisement> {
  const r = new Redis(redisUrl, { lazyConnect: true });
  try {
    await r.connect();
    const uuid = await r.get(`{${prefix}}/core/lock`);
    if (!uuid) throw new Error('no lock holder');
    const raw = await r.getBuffer(`{${prefix}}/d/${advertisementPath(uuid)}`);
    if (!raw) throw new Error('no advertisement');
    const d = decodeAdvertisement(
      raw,
      advertisementPath(uuid),
      [Buffer.from(keys.adKey, 'base64')],
      [verifyKeyFromRaw(Buffer.from(keys.verifyKey, 'base64'))],
    );
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

/** The test gateways' client certificate and key (PEM), to reach a cluster listener as a gateway does. */
export async function gatewayClientTls(): Promise<{ cert: string; key: string }> {
  const f = await gatewayPkiFiles();
  return { cert: readFileSync(f.certFile, 'utf8'), key: readFileSync(f.keyFile, 'utf8') };
}

/**
 * The current leader's cluster certificate and private key (PEM), read as only a node can: the
 * key is behind the barrier, so this opens it with the seal key.
 */
export async function readLeaderIdentity(
  redisUrl: string,
  keys: TestKeys,
  prefix = 'leaderway',
): Promise<{ ad: Advertisement; cert: string; key: string }> {
  const ad = await readAdvertisement(redisUrl, keys, prefix);
  const backend = new RedisBackend({ url: redisUrl, prefix });
  await backend.start();
  try {
    return await leaderIdentityFrom(backend, ad, keys);
  } finally {
    await backend.close();
  }
}

/**
 * `ad`'s leader's cluster certificate and private key (PEM), from the storage `backend` (any
 * kind): the key is behind the barrier, so this opens it with the seal key.
 */
export async function leaderIdentityFrom(
  backend: Backend,
  ad: Advertisement,
  keys: TestKeys,
): Promise<{ ad: Advertisement; cert: string; key: string }> {
  const u = await unseal(backend, Buffer.from(keys.sealKey, 'base64'));
  if (u.state !== 'unsealed') throw new Error(`cannot open the barrier: ${u.state}`);
  const stored = await u.storage.get<{ key: string }>(LEADER_KEY_PREFIX + ad.uuid);
  if (!stored) throw new Error('no leader key behind the barrier');
  return { ad, cert: derToPem(ad.cert, 'CERTIFICATE'), key: derToPem(stored.key, 'PRIVATE KEY') };
}
