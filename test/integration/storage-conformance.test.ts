/**
 * Runs the storage conformance suite against the in-memory backends, a real redis-server and a
 * real PostgreSQL cluster, then checks what only Redis can get wrong: key layout, prefix
 * isolation, outages. (PostgreSQL's own checks are in postgres-storage.test.ts.)
 */
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import { isLwError } from '../../shared/errors';
import type { HAEvent } from '../../shared/storage/backend';
import { InmemBackend, InmemHABackend, InmemStore } from '../../shared/storage/inmem';
import { PostgresBackend } from '../../shared/storage/postgres/postgres-backend';
import { PostgresHABackend } from '../../shared/storage/postgres/postgres-ha-backend';
import { RedisBackend } from '../../shared/storage/redis/redis-backend';
import { RedisHABackend } from '../../shared/storage/redis/redis-ha-backend';
import { type PostgresServer, startPostgres } from '../helpers/postgres';
import { type RedisServer, startRedis } from '../helpers/redis';
import {
  exerciseBackend,
  exerciseHABackend,
  rejectsWithCode,
  sleep,
  tracker,
  waitFor,
} from '../helpers/storage-conformance';

/** Short, so the outage tests stay fast; the slack absorbs a loaded CI machine. */
const OUTAGE_COMMAND_TIMEOUT_MS = 500;
const TIMING_SLACK_MS = 400;
/** Reconnect backoff is capped at 1 s, so recovery must happen well within this. */
const RECOVERY_TIMEOUT_MS = 5000;

/** True if `secret` appears in any string or Buffer reachable from `value` (hidden properties too). */
function holdsSecret(value: unknown, secret: Buffer, seen = new Set<unknown>()): boolean {
  if (typeof value === 'string') return value.includes(secret.toString());
  if (Buffer.isBuffer(value)) return value.includes(secret);
  if (typeof value !== 'object' || value === null || seen.has(value)) return false;
  seen.add(value);
  return Reflect.ownKeys(value).some((key) =>
    holdsSecret((value as Record<PropertyKey, unknown>)[key], secret, seen),
  );
}

let prefixes = 0;
const nextPrefix = (): string => `lwt-${process.pid}-${++prefixes}`;

describe('in-memory storage', () => {
  describe('InmemBackend', () => {
    exerciseBackend(async () => {
      const store = new InmemStore();
      return { backend: new InmemBackend(store), ha: new InmemHABackend(store) };
    });
  });
  describe('InmemHABackend', () => {
    exerciseHABackend(async () => {
      const store = new InmemStore();
      return [new InmemHABackend(store), new InmemHABackend(store)];
    });
  });
  it('rejects with LW_ERR_STORAGE_UNAVAILABLE while the store is unavailable', async () => {
    const store = new InmemStore();
    const backend = new InmemBackend(store);
    await backend.put('a', Buffer.from('1'));
    store.setAvailable(false);
    await rejectsWithCode(backend.get('a'), 'LW_ERR_STORAGE_UNAVAILABLE');
    await rejectsWithCode(new InmemHABackend(store).holder(), 'LW_ERR_STORAGE_UNAVAILABLE');
    store.setAvailable(true);
    assert.deepEqual(await backend.get('a'), Buffer.from('1'));
  });
});

describe('redis storage', () => {
  let redis: RedisServer;
  // Registered first so clients are closed before the server stops (hooks run in order).
  const track = tracker();
  before(async () => {
    redis = await startRedis();
  });
  after(async () => {
    await redis?.stop();
  });

  const openData = async (prefix: string, commandTimeoutMs?: number): Promise<RedisBackend> => {
    const backend = track(new RedisBackend({ url: redis.url, prefix, commandTimeoutMs }));
    await backend.start();
    return backend;
  };
  const openHA = async (prefix: string, commandTimeoutMs?: number): Promise<RedisHABackend> => {
    const ha = track(new RedisHABackend({ url: redis.url, prefix, commandTimeoutMs }));
    await ha.start();
    return ha;
  };

  describe('RedisBackend', () => {
    exerciseBackend(async () => {
      const prefix = nextPrefix();
      return { backend: await openData(prefix), ha: await openHA(prefix) };
    });
  });
  describe('RedisHABackend', () => {
    exerciseHABackend(async () => {
      const prefix = nextPrefix();
      return [await openHA(prefix), await openHA(prefix)];
    });
  });

  it('keeps every key under the {prefix} hash tag', async () => {
    const prefix = nextPrefix();
    const [backend, ha] = [await openData(prefix), await openHA(prefix)];
    await backend.put('core/keyring', Buffer.from('k'));
    await ha.acquire(randomUUID(), 10_000);
    const all = (await redis.cli('KEYS', '*')) as string[];
    for (const key of all) assert.match(key, /^\{lwt-\d+-\d+\}\//);
    const mine = all.filter((k) => k.startsWith(`{${prefix}}`)).sort();
    const tag = `{${prefix}}`;
    assert.deepEqual(mine, [
      `${tag}/core/lock`,
      `${tag}/core/lock-conn`,
      `${tag}/core/lock-epoch`,
      `${tag}/d/core/keyring`,
      `${tag}/index`,
    ]);
  });

  it('isolates two prefixes on one Redis: data, lock and epoch', async () => {
    const [p1, p2] = [nextPrefix(), nextPrefix()];
    const [d1, d2] = [await openData(p1), await openData(p2)];
    const [h1, h2] = [await openHA(p1), await openHA(p2)];
    await d1.put('same/path', Buffer.from('one'));
    assert.equal(await d2.get('same/path'), null);
    assert.deepEqual(await d2.list(''), []);
    const v1 = randomUUID();
    const e1 = await h1.acquire(v1, 10_000);
    const e2 = await h2.acquire(randomUUID(), 10_000);
    assert.ok(e1 && e2, 'each prefix has its own lock');
    assert.equal(await h1.release(v1), true);
    const e1b = await h1.acquire(randomUUID(), 10_000);
    assert.ok(e1b && e1b > e1);
    assert.equal((await h2.holder())?.epoch, e2, 'own epoch');
  });

  it('keeps the epoch rising when Redis loses its data (restore from backup, no persistence)', async () => {
    const p = nextPrefix();
    const h = await openHA(p);
    const v = randomUUID();
    const before = await h.acquire(v, 10_000);
    assert.ok(before);
    await redis.cli('FLUSHALL');
    const after = await h.acquire(randomUUID(), 10_000);
    assert.ok(after && after > before, `epoch went from ${before} to ${after}`);
  });

  it('runs its scripts with EVALSHA only, loading them again after Redis forgot them (SCRIPT FLUSH)', async () => {
    const prefix = nextPrefix();
    const [backend, ha] = [await openData(prefix), await openHA(prefix)];
    const before = Number(
      /cmdstat_eval:calls=(\d+)/.exec(String(await redis.cli('INFO', 'commandstats')))?.[1] ?? 0,
    );
    await backend.put('s/a', Buffer.from('1'));
    await redis.cli('SCRIPT', 'FLUSH');
    await backend.put('s/b', Buffer.from('2'));
    assert.deepEqual(await backend.getWithin('s/b', 10), Buffer.from('2'));
    await redis.cli('SCRIPT', 'FLUSH');
    const v = randomUUID();
    assert.ok(await ha.acquire(v, 10_000));
    assert.equal(await ha.release(v), true);
    const stats = String(await redis.cli('INFO', 'commandstats'));
    const evals = Number(/cmdstat_eval:calls=(\d+)/.exec(stats)?.[1] ?? 0);
    assert.equal(evals, before, 'a script was sent with EVAL');
    assert.match(stats, /cmdstat_script\|load:calls=\d+/);
  });

  it('rejects a bad prefix with LW_ERR_CONFIG', () => {
    for (const prefix of ['', 'has}brace', 'spa ce', 'x'.repeat(65)]) {
      assert.throws(
        () => new RedisBackend({ url: redis.url, prefix }),
        (err: unknown) => isLwError(err, 'LW_ERR_CONFIG'),
      );
    }
  });

  it('never puts command arguments (stored values) into errors', async () => {
    const prefix = nextPrefix();
    const backend = await openData(prefix);
    // Corrupt the index so batch.lua fails inside Redis with a reply error.
    await redis.cli('SET', backend.keys.index, 'not a sorted set');
    const secret = `s3cret-${randomUUID()}`;
    const err = await backend.put('p', Buffer.from(secret)).then(
      () => assert.fail('put should fail'),
      (e: unknown) => e,
    );
    assert.ok(isLwError(err, 'LW_ERR_STORAGE_UNAVAILABLE'));
    assert.ok(!holdsSecret(err, Buffer.from(secret)), 'a stored value leaked into the error');
  });

  it('ignores malformed channel messages and keeps delivering valid ones', async () => {
    const ha = await openHA(nextPrefix());
    const seen: HAEvent[] = [];
    ha.subscribe((e) => seen.push(e));
    const channel = ha.keys.events;
    const publishRaw = (message: string) => redis.cli('PUBLISH', channel, message);
    await waitFor(
      async () => {
        await publishRaw('{"type":"released","epoch":3}');
        await sleep(50);
        return seen.length > 0;
      },
      3000,
      'the subscription to be active',
    );
    const garbage = ['not json', '{"type":"nope","epoch":1}', '{"type":"released","epoch":-1}', 'null', '[]'];
    for (const message of garbage) await publishRaw(message);
    await publishRaw('{"type":"advertised","epoch":4}');
    await waitFor(() => seen.some((e) => e.epoch === 4), 3000, 'the event after the garbage');
    assert.ok(
      seen.every(
        (e) => (e.type === 'released' && e.epoch === 3) || (e.type === 'advertised' && e.epoch === 4),
      ),
    );
    assert.equal(ha.stats.malformedEvents, garbage.length);
  });

  it('fails fast while Redis is down or paused, and the same objects recover', async () => {
    const outage = await startRedis();
    const clients: Array<{ close(): Promise<void> }> = [];
    const local = <T extends { close(): Promise<void> }>(c: T): T => {
      clients.push(c);
      return c;
    };
    try {
      const prefix = nextPrefix();
      const opts = { url: outage.url, prefix, commandTimeoutMs: OUTAGE_COMMAND_TIMEOUT_MS };
      const backend = local(new RedisBackend(opts));
      const [ha, watcher] = [local(new RedisHABackend(opts)), local(new RedisHABackend(opts))];
      await Promise.all([backend.start(), ha.start(), watcher.start()]);
      const seen: HAEvent[] = [];
      watcher.subscribe((e) => seen.push(e));
      await backend.put('k', Buffer.from('v'));

      await outage.kill();
      let t0 = performance.now();
      await rejectsWithCode(backend.get('k'), 'LW_ERR_STORAGE_UNAVAILABLE');
      await rejectsWithCode(backend.put('k', Buffer.from('w')), 'LW_ERR_STORAGE_UNAVAILABLE');
      await rejectsWithCode(ha.acquire(randomUUID(), 1000), 'LW_ERR_STORAGE_UNAVAILABLE');
      await ha.publish({ type: 'released', epoch: 1 }); // best effort: resolves
      assert.ok(performance.now() - t0 < OUTAGE_COMMAND_TIMEOUT_MS + TIMING_SLACK_MS, 'rejected quickly');

      // A backend constructed while Redis is down starts failing, then heals like the others.
      const late = local(new RedisBackend(opts));
      await rejectsWithCode(late.start(200), 'LW_ERR_STORAGE_UNAVAILABLE');

      await outage.start();
      for (const b of [backend, late]) {
        await waitFor(async () => (await b.list('')) !== undefined, RECOVERY_TIMEOUT_MS, 'reconnect');
      }
      await backend.put('k2', Buffer.from('again')); // scripts reload on the new connection
      assert.deepEqual(await late.get('k2'), Buffer.from('again'));
      assert.ok((await ha.acquire(randomUUID(), 1000)) !== null);
      await waitFor(
        async () => {
          await ha.publish({ type: 'advertised', epoch: 2 });
          await sleep(50);
          return seen.some((e) => e.epoch === 2);
        },
        RECOVERY_TIMEOUT_MS,
        'the subscriber to resubscribe after the restart',
      );

      outage.pause();
      t0 = performance.now();
      await rejectsWithCode(backend.get('k2'), 'LW_ERR_STORAGE_UNAVAILABLE');
      const elapsed = performance.now() - t0;
      outage.resume();
      assert.ok(
        elapsed >= OUTAGE_COMMAND_TIMEOUT_MS - 50,
        `timed out by the command timeout (${elapsed} ms)`,
      );
      assert.ok(elapsed < OUTAGE_COMMAND_TIMEOUT_MS + TIMING_SLACK_MS, `not later (${elapsed} ms)`);
      await waitFor(
        async () => (await backend.get('k2')) !== null,
        RECOVERY_TIMEOUT_MS,
        'answers after resume',
      );
    } finally {
      outage.resume();
      await Promise.allSettled(clients.map((c) => c.close()));
      await outage.stop();
    }
  });
});

describe('postgresql storage', () => {
  let pg: PostgresServer;
  // Registered first so clients are closed before the server stops (hooks run in order).
  const track = tracker();
  before(async () => {
    pg = await startPostgres();
  });
  after(async () => {
    await pg?.stop();
  });

  /** Each test gets its own tables, as each Redis test gets its own prefix. */
  let tables = 0;
  const nextTables = () => {
    tables += 1;
    return { table: `lwt_kv_${tables}`, haTable: `lwt_ha_${tables}` };
  };
  const openData = async (t: { table: string; haTable: string }) => {
    const backend = track(new PostgresBackend({ url: pg.url, ...t }));
    await backend.start();
    return backend;
  };
  const openHA = async (t: { haTable: string }) => {
    const ha = track(new PostgresHABackend({ url: pg.url, haTable: t.haTable }));
    await ha.start();
    return ha;
  };

  describe('PostgresBackend', () => {
    exerciseBackend(async () => {
      const t = nextTables();
      return { backend: await openData(t), ha: await openHA(t) };
    });
  });
  describe('PostgresHABackend', () => {
    exerciseHABackend(async () => {
      const t = nextTables();
      return [await openHA(t), await openHA(t)];
    });
  });
});
