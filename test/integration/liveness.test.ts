/**
 * Crash failover without waiting out the lock TTL (holder liveness): a standby watches the
 * active's lock connection in Redis and takes the lock over, in one compare-and-replace that
 * advances the epoch, once that connection has been gone for LEADERWAY_LIVENESS_GRACE. The lock
 * TTL here is 10 s, so a failover that waited it out could not pass these bounds.
 *
 * Redis' MONITOR stream (test/chaos/lock-monitor.ts) checks every stored write against the lock
 * holder at that instant, so a takeover that let the old holder's writes land would show.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { LockMonitor } from '../chaos/lock-monitor';
import { findActive, rawRedis, waitActive } from '../helpers/cluster';
import { call, initCluster } from '../helpers/http';
import { type Proc, spawnNode, testKeys, waitFor } from '../helpers/procs';
import { type RedisServer, startRedis } from '../helpers/redis';

const TTL = '10s';
/** Crash to a new active node: well under the 10 s TTL (grace 300 ms + poll 100 ms + activation). */
const TAKEOVER_BOUND_MS = 3_000;

function counter(metrics: string, name: string): number {
  const m = new RegExp(`^${name} (\\d+)`, 'm').exec(metrics);
  return m ? Number(m[1]) : 0;
}

describe('holder liveness: crash failover within a second', () => {
  let redis: RedisServer;
  const keys = testKeys();
  const nodes: Proc[] = [];
  let monitor: LockMonitor;
  let token = '';
  const env = { LEADERWAY_LOCK_TTL: TTL, LEADERWAY_LOG_LEVEL: 'debug' };

  const spawn = (name: string) => spawnNode(name, { redisUrl: redis.url, keys, env });
  const live = () => nodes.filter((n) => n.child.exitCode === null && n.child.signalCode === null);

  before(async () => {
    redis = await startRedis({ appendonly: true });
    monitor = new LockMonitor(redis.port);
    await monitor.start();
    for (const n of ['n1', 'n2', 'n3']) nodes.push(await spawn(n));
    token = await initCluster((nodes[0] as Proc).url);
    await waitActive(nodes, 20_000);
    // Let every standby's lock connection settle (a fresh connection is no witness).
    await new Promise((r) => setTimeout(r, 2_500));
  });

  after(async () => {
    const report = monitor?.stop();
    await Promise.all(nodes.map((n) => n.stop('SIGKILL')));
    await redis?.stop();
    assert.deepEqual(report?.violations ?? [], [], 'Redis executed a write the lock did not allow');
  });

  it('kill -9 of the active: a standby takes over in well under the TTL, with a new epoch', async (t) => {
    const a = await waitActive(live(), 20_000);
    const before = await call(a.url, '/v1/sys/leader');
    assert.equal(before.status, 200);
    const w = await call(a.url, '/v1/secret/data/live', { token, body: { data: { v: 1 } } });
    assert.equal(w.status, 200, w.text);
    const epochBefore = Number(await redis.cli('GET', '{leaderway}/core/lock-epoch'));
    const t0 = performance.now();
    await a.stop('SIGKILL');
    const b = await waitActive(live(), TAKEOVER_BOUND_MS + 2_000, a);
    const ms = performance.now() - t0;
    t.diagnostic(`kill -9 to a new active node: ${ms.toFixed(0)} ms (lock TTL ${TTL})`);
    assert.ok(ms < TAKEOVER_BOUND_MS, `took ${ms.toFixed(0)} ms (the TTL is ${TTL})`);
    assert.equal(counter((await call(b.metricsUrl, '/metrics')).text, 'leaderway_lock_takeovers_total'), 1);
    assert.ok(
      Number(await redis.cli('GET', '{leaderway}/core/lock-epoch')) > epochBefore,
      'the epoch advanced',
    );
    const r = await call(b.url, '/v1/secret/data/live', { token });
    assert.equal(r.status, 200);
    nodes[nodes.indexOf(a)] = await spawn(`${a.name}x`);
  });

  it('a live holder whose lock connection is killed re-records it: no leader change', async () => {
    const a = await waitActive(live(), 20_000);
    await new Promise((r) => setTimeout(r, 2_500));
    const record = String(await redis.cli('GET', '{leaderway}/core/lock-conn'));
    const clientId = record.split('|')[2] ?? '';
    assert.match(clientId, /^\d+$/, `a connection record: ${record}`);
    await redis.cli('CLIENT', 'KILL', 'ID', clientId);
    // Three liveness polls past the grace: a takeover would have happened by now.
    await new Promise((r) => setTimeout(r, 1_500));
    assert.equal(await findActive(live()), a, 'the leader changed');
    const now = String(await redis.cli('GET', '{leaderway}/core/lock-conn'));
    assert.notEqual(now, record, 'the holder re-recorded its new connection');
    assert.equal(now.split('|')[0], record.split('|')[0]);
  });

  it('a frozen holder whose connection is gone is replaced; resumed, it steps down and stores nothing', async () => {
    const a = await waitActive(live(), 20_000);
    await new Promise((r) => setTimeout(r, 2_500));
    const record = String(await redis.cli('GET', '{leaderway}/core/lock-conn'));
    const clientId = record.split('|')[2] ?? '';
    a.pause();
    try {
      // Frozen, it cannot reconnect and re-record: to the standbys it is a crash.
      await redis.cli('CLIENT', 'KILL', 'ID', clientId);
      const b = await waitActive(live(), TAKEOVER_BOUND_MS + 2_000, a);
      assert.ok(b !== a);
    } finally {
      a.resume();
    }
    // It finds its lock taken at its next renew and steps down; nothing it sends is stored
    // (the MONITOR check in `after` would name such a write).
    await waitFor(
      async () => (await call(a.url, '/v1/sys/health')).status === 429,
      15_000,
      'the old holder standby',
    );
    const actives = (
      await Promise.all(
        live().map(async (n) => ((await call(n.url, '/v1/sys/health')).status === 200 ? n : null)),
      )
    ).filter(Boolean);
    assert.equal(actives.length, 1);
    assert.ok(a.logs().some((l) => l.msg === 'leadership lost'));
  });

  it('a Redis restart causes no takeover (every connection is new; records name the old server)', async () => {
    const a = await waitActive(live(), 20_000);
    const takeovers = async () => {
      let sum = 0;
      for (const n of live())
        sum += counter((await call(n.metricsUrl, '/metrics')).text, 'leaderway_lock_takeovers_total');
      return sum;
    };
    const before = await takeovers();
    const r = await rawRedis(redis.url);
    await r.bgrewriteaof().catch(() => undefined);
    r.disconnect();
    await redis.restart();
    await new Promise((res) => setTimeout(res, 4_000));
    assert.equal(await takeovers(), before, 'a node took the lock over after a Redis restart');
    assert.equal(await waitActive(live(), 20_000), a, 'the leader changed');
  });
});
