/**
 * The MONITOR-based fencing observer against a real Redis: leaderway's own scripts produce no
 * violation, while a rogue copy of the batch script with its fence check removed — writing with a
 * lock value that is not (or no longer) the holder — is caught, as is an unscripted write.
 */
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { readFileSync } from 'node:fs';
import * as path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { RedisBackend } from '../../shared/storage/redis/redis-backend';
import { RedisHABackend } from '../../shared/storage/redis/redis-ha-backend';
import { rawRedis } from '../helpers/cluster';
import { type RedisServer, startRedis } from '../helpers/redis';
import { LockMonitor } from './lock-monitor';
import { parseArgs } from './monitor-stream';

const ROGUE_BATCH = readFileSync(
  path.join(__dirname, '..', '..', 'shared', 'storage', 'redis', 'scripts', 'batch.lua'),
  'utf8',
).replace("if ARGV[1] == '1' and redis.call('GET', KEYS[2]) ~= ARGV[2] then", 'if false then');

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('chaos lock monitor (fencing evidence from MONITOR)', () => {
  let redis: RedisServer;
  let ha: RedisHABackend;
  let data: RedisBackend;

  before(async () => {
    redis = await startRedis();
    ha = new RedisHABackend({ url: redis.url });
    data = new RedisBackend({ url: redis.url });
    await Promise.all([ha.start(), data.start()]);
  });

  after(async () => {
    await Promise.allSettled([ha?.close(), data?.close()]);
    await redis?.stop();
  });

  /** Lets MONITOR lines arrive before the report is taken. */
  async function settle(m: LockMonitor) {
    await sleep(200);
    return m.stop();
  }

  it('parses quoted MONITOR arguments with escapes', () => {
    assert.deepEqual(parseArgs('"SET" "a\\"b" "\\x00\\xff" "c\\\\d"', 10), [
      'SET',
      'a"b',
      '\x00\xff',
      'c\\d',
    ]);
  });

  it('sees terms and fenced writes by the holder without a violation', async () => {
    const m = new LockMonitor(redis.port);
    await m.start();
    await sleep(100);
    const v = randomUUID();
    const e1 = await ha.acquire(v, 5_000);
    assert.ok(e1);
    const view = data.fenced(v, new AbortController().signal);
    await view.put('kv/a', Buffer.from('x'));
    await view.batch([{ op: 'delete', path: 'kv/a' }]);
    assert.ok(await ha.renew(v, 5_000));
    assert.ok(await ha.release(v));
    const other = randomUUID();
    const e2 = await ha.acquire(other, 5_000);
    assert.ok(e2);
    await assert.rejects(view.put('kv/b', Buffer.from('refused')));
    const r = await settle(m);
    assert.deepEqual(r.violations, []);
    assert.equal(r.writesChecked, 2);
    assert.deepEqual(
      r.acquisitions.map((a) => a.epoch),
      [e1, e2],
      'the monitor follows the epochs Redis granted',
    );
    assert.equal(r.ends.released, 1);
    await ha.release(other);
  });

  it('catches a write stored by a non-holder, after expiry, or outside the scripts', async () => {
    const m = new LockMonitor(redis.port);
    await m.start();
    await sleep(100);
    const c = await rawRedis(redis.url);
    try {
      const rogue = (fence: string, p: string) =>
        c.eval(
          ROGUE_BATCH,
          3,
          '{leaderway}/index',
          '{leaderway}/core/lock',
          `{leaderway}/d/${p}`,
          '1',
          fence,
          '0',
          'P',
          p,
          'v',
        );
      const mine = randomUUID();
      assert.ok(await ha.acquire(mine, 300));
      await rogue(randomUUID(), 'kv/stranger');
      await sleep(400);
      await rogue(mine, 'kv/expired');
      await c.set('{leaderway}/d/kv/direct', 'x');
      const r = await settle(m);
      const all = r.violations.join('\n');
      assert.match(all, /kv\/stranger fenced by .* stored while/);
      assert.match(all, /kv\/expired .*(after its lock expired|while nobody held)/);
      assert.match(all, /write outside the scripts: SET \{leaderway\}\/d\/kv\/direct/);
    } finally {
      c.disconnect();
    }
  });
});
