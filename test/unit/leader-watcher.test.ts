/**
 * The leader watcher's fail-closed rules, in milliseconds: it is fed a scripted lock holder (a
 * fake of the two HABackend methods it uses, so the epoch can even go backwards as after a
 * restored backup) and real advertisements in an in-memory store. Whatever it cannot verify —
 * no holder, no advertisement, a forged, undecryptable, unsigned, replayed or stale one, a store
 * it cannot read for too long — leaves it with no leader, never with a guessed or an old one.
 */
import assert from 'node:assert/strict';
import { randomBytes, randomUUID } from 'node:crypto';
import { describe, it } from 'node:test';
import {
  type Advertisement,
  advertisementPath,
  encodeAdvertisement,
  encodeLegacyAdvertisement,
} from '../../shared/advertisement';
import { signingKeyFromSeed, verifyKeyFromRaw } from '../../shared/crypto/signing';
import { LeaderWatcher, type LeaderWatcherOptions } from '../../shared/leader/leader-watcher';
import type { HABackend, LockHolder } from '../../shared/storage/backend';
import { InmemBackend, InmemStore } from '../../shared/storage/inmem';

/** The watcher's polling period here: it drops a leader it has not confirmed for 3 of them. */
const POLL_MS = 20;

const adKey = randomBytes(32);
const signer = signingKeyFromSeed(randomBytes(32));
const verifyKeys = [verifyKeyFromRaw(signer.publicRaw)];

/** The lock holder as the watcher reads it; `fail` makes the store unreachable. */
class ScriptedHolder {
  holder: LockHolder | null = null;
  fail = false;

  async read(): Promise<LockHolder | null> {
    if (this.fail) throw new Error('connection refused');
    return this.holder;
  }

  /** The part of HABackend the watcher uses. */
  asBackend(): HABackend {
    return { holder: () => this.read(), subscribe: () => () => {} } as unknown as HABackend;
  }
}

function ad(uuid: string, epoch: number): Advertisement {
  return {
    uuid,
    epoch,
    node_id: `node-${epoch}`,
    api_addr: 'https://127.0.0.1:8200',
    cluster_addr: 'https://127.0.0.1:8201',
    cert: Buffer.from('not a certificate').toString('base64'),
    active_time: new Date(0).toISOString(),
  };
}

function setup(opts: Partial<LeaderWatcherOptions> = {}) {
  const store = new InmemStore();
  const data = new InmemBackend(store);
  const lock = new ScriptedHolder();
  const rejects: string[] = [];
  const readErrors: unknown[] = [];
  const watcher = new LeaderWatcher({
    data,
    ha: lock.asBackend(),
    keys: [adKey],
    verifyKeys,
    connect: false,
    pollMs: POLL_MS,
    hooks: { onReject: (reason) => rejects.push(reason), onReadError: (err) => readErrors.push(err) },
    ...opts,
  });
  /** Makes `uuid` the holder at `epoch`, with its advertisement as `bytes` (a valid one by default). */
  const elect = async (uuid: string, epoch: number, bytes?: Buffer | null) => {
    lock.holder = { value: uuid, epoch };
    const raw = bytes === undefined ? encodeAdvertisement(ad(uuid, epoch), [adKey], signer) : bytes;
    if (raw) await data.put(advertisementPath(uuid), raw);
  };
  return { store, data, lock, watcher, rejects, readErrors, elect };
}

describe('LeaderWatcher fails closed', () => {
  it('accepts a holder whose advertisement authenticates, is signed and names its uuid and epoch', async () => {
    const { watcher, elect, rejects } = setup();
    const uuid = randomUUID();
    await elect(uuid, 1);
    await watcher.refresh();
    assert.equal(watcher.current()?.ad.uuid, uuid);
    assert.equal(watcher.current()?.ad.epoch, 1);
    assert.deepEqual(rejects, []);
  });

  it('no lock holder: no leader', async () => {
    const { watcher, elect, lock } = setup();
    await elect(randomUUID(), 1);
    await watcher.refresh();
    lock.holder = null;
    await watcher.refresh();
    assert.equal(watcher.current(), null);
  });

  it('a holder that has not advertised yet: no leader (not the previous one)', async () => {
    const { watcher, elect } = setup();
    await elect(randomUUID(), 1);
    await watcher.refresh();
    await elect(randomUUID(), 2, null);
    await watcher.refresh();
    assert.equal(watcher.current(), null);
  });

  it('an advertisement signed by a key no node has (a forgery): refused, no leader', async () => {
    const { watcher, elect, rejects } = setup();
    await elect(randomUUID(), 1);
    await watcher.refresh();
    const uuid = randomUUID();
    const forger = signingKeyFromSeed(randomBytes(32));
    await elect(uuid, 2, encodeAdvertisement(ad(uuid, 2), [adKey], forger));
    await watcher.refresh();
    assert.equal(watcher.current(), null);
    assert.deepEqual(rejects, ['unknown-signer']);
  });

  it('an advertisement under an unknown key, or tampered with: refused', async () => {
    const { watcher, elect, rejects } = setup();
    const a = randomUUID();
    await elect(a, 1, encodeAdvertisement(ad(a, 1), [randomBytes(32)], signer));
    await watcher.refresh();
    assert.equal(watcher.current(), null);
    const b = randomUUID();
    const tampered = encodeAdvertisement(ad(b, 2), [adKey], signer);
    tampered[tampered.length - 1] = (tampered[tampered.length - 1] as number) ^ 1;
    await elect(b, 2, tampered);
    await watcher.refresh();
    assert.equal(watcher.current(), null);
    assert.deepEqual(rejects, ['unknown-key', 'decrypt']);
  });

  it('another node’s advertisement replayed under the holder’s uuid: refused', async () => {
    const { watcher, elect, rejects } = setup();
    const other = randomUUID();
    await elect(randomUUID(), 1, encodeAdvertisement(ad(other, 1), [adKey], signer));
    await watcher.refresh();
    assert.equal(watcher.current(), null);
    assert.equal(rejects.length, 1);
  });

  it('an advertisement from an earlier term of the same lock value (a restored backup): refused', async () => {
    const { watcher, elect, rejects } = setup();
    const uuid = randomUUID();
    await elect(uuid, 3, encodeAdvertisement(ad(uuid, 2), [adKey], signer));
    await watcher.refresh();
    assert.equal(watcher.current(), null);
    assert.deepEqual(rejects, ['epoch-mismatch']);
  });

  it('a holder whose epoch is older than one already accepted (the store went back): refused', async () => {
    const { watcher, elect, rejects } = setup();
    await elect(randomUUID(), 5);
    await watcher.refresh();
    assert.ok(watcher.current());
    await elect(randomUUID(), 4);
    await watcher.refresh();
    assert.equal(watcher.current(), null);
    assert.deepEqual(rejects, ['stale-epoch']);
  });

  it('the previous, unsigned format: refused outside legacy mode', async () => {
    const { watcher, elect, rejects } = setup();
    const uuid = randomUUID();
    await elect(uuid, 1, encodeLegacyAdvertisement({ ...ad(uuid, 1), key: 'a2V5' }, [adKey]));
    await watcher.refresh();
    assert.equal(watcher.current(), null);
    assert.deepEqual(rejects, ['unsigned']);
  });

  it('a leader it has no identity for, or whose certificate does not parse: no leader', async () => {
    const none = setup({ connect: true, identity: async () => null });
    await none.elect(randomUUID(), 1);
    await none.watcher.refresh();
    assert.equal(none.watcher.current(), null);
    assert.deepEqual(none.rejects, ['no-identity']);
    const bad = setup({ connect: true, identity: async () => ({ certPem: 'x', keyPem: 'y' }) });
    await bad.elect(randomUUID(), 1);
    await bad.watcher.refresh();
    assert.equal(bad.watcher.current(), null);
    assert.deepEqual(bad.rejects, ['bad-cert']);
  });

  it('lock store unreachable: keeps the leader for three polls, then drops it', async () => {
    const { watcher, elect, lock, readErrors } = setup();
    const changes: (string | null)[] = [];
    watcher.on('change', (l) => changes.push(l?.ad.uuid ?? null));
    const uuid = randomUUID();
    await elect(uuid, 1);
    await watcher.refresh();
    lock.fail = true;
    await watcher.refresh();
    assert.equal(readErrors.length, 1);
    assert.equal(watcher.current()?.ad.uuid, uuid, 'one failed read does not drop a confirmed leader');
    await new Promise((r) => setTimeout(r, POLL_MS * 3 + 10));
    assert.equal(watcher.current(), null);
    assert.deepEqual(changes, [uuid, null]);
  });

  it('advertisement store unreachable for a new holder: never routes to the old one for long', async () => {
    const { watcher, elect, store, readErrors } = setup();
    await elect(randomUUID(), 1);
    await watcher.refresh();
    await elect(randomUUID(), 2);
    store.setAvailable(false);
    await watcher.refresh();
    assert.equal(readErrors.length, 1);
    await new Promise((r) => setTimeout(r, POLL_MS * 3 + 10));
    assert.equal(watcher.current(), null);
  });

  it('waitFor gives up with null when no verifiable leader appears in time', async () => {
    const { watcher, elect } = setup();
    const uuid = randomUUID();
    await elect(uuid, 1, encodeAdvertisement(ad(uuid, 1), [adKey], signingKeyFromSeed(randomBytes(32))));
    const started = performance.now();
    assert.equal(await watcher.waitFor(30), null);
    assert.ok(performance.now() - started >= 25);
    await watcher.close();
  });
});
