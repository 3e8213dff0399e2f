/**
 * Smoke test of `leaderway server` on PostgreSQL (LEADERWAY_STORAGE=postgresql): init, a write
 * and a read, then kill -9 of the active: the standby takes the lock over (its lock session is
 * gone from pg_stat_activity) with a new epoch and serves the data.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { waitActive } from '../helpers/cluster';
import { call, initCluster } from '../helpers/http';
import { type PostgresServer, startPostgres } from '../helpers/postgres';
import { type Proc, spawnNode, testKeys } from '../helpers/procs';

/** Long, so a takeover within TAKEOVER_BOUND_MS can only be holder liveness. */
const TTL = '10s';
const TAKEOVER_BOUND_MS = 5_000;

describe('leaderway server on PostgreSQL', () => {
  let pg: PostgresServer;
  const keys = testKeys();
  const nodes: Proc[] = [];
  let token = '';

  const spawn = (name: string) =>
    spawnNode(name, {
      redisUrl: 'redis://127.0.0.1:1', // unused: storage is PostgreSQL
      keys,
      env: {
        LEADERWAY_STORAGE: 'postgresql',
        LEADERWAY_POSTGRESQL_URL: pg.url,
        LEADERWAY_LOCK_TTL: TTL,
        // Where `pg` is installed outside node_modules (a worktree sharing another's).
        ...(process.env['NODE_PATH'] ? { NODE_PATH: process.env['NODE_PATH'] } : {}),
      },
    });
  const live = () => nodes.filter((n) => n.child.exitCode === null && n.child.signalCode === null);

  before(async () => {
    pg = await startPostgres();
    nodes.push(await spawn('n1'));
    token = await initCluster((nodes[0] as Proc).url);
    await waitActive(nodes, 20_000);
    nodes.push(await spawn('n2'));
  });

  after(async () => {
    await Promise.all(nodes.map((n) => n.stop('SIGKILL')));
    await pg?.stop();
  });

  it('stores and serves secrets, and a standby takes over from a killed active within the TTL', async (t) => {
    const a = await waitActive(live(), 20_000);
    const w = await call(a.url, '/v1/secret/data/pg', { token, body: { data: { v: 'one' } } });
    assert.equal(w.status, 200, w.text);
    const r = await call(a.url, '/v1/secret/data/pg', { token });
    assert.equal(r.status, 200, r.text);
    assert.equal((r.body as { data: { data: { v: string } } }).data.data.v, 'one');
    const [lock] = await pg.sql(
      `SELECT epoch::text AS epoch FROM leaderway_ha_locks WHERE ha_key = 'core/lock'`,
    );
    // Let the standby's liveness watch see the holder's session alive first (a fresh one is no witness).
    await new Promise((res) => setTimeout(res, 2_500));
    const t0 = performance.now();
    await a.stop('SIGKILL');
    const b = await waitActive(live(), TAKEOVER_BOUND_MS + 5_000, a);
    const ms = performance.now() - t0;
    t.diagnostic(`kill -9 to a new active node on PostgreSQL: ${ms.toFixed(0)} ms (lock TTL ${TTL})`);
    assert.ok(ms < TAKEOVER_BOUND_MS, `took ${ms.toFixed(0)} ms (the TTL is ${TTL})`);
    const [after] = await pg.sql(
      `SELECT epoch::text AS epoch FROM leaderway_ha_locks WHERE ha_key = 'core/lock'`,
    );
    assert.ok(BigInt(String(after?.['epoch'])) > BigInt(String(lock?.['epoch'])), 'the epoch advanced');
    const again = await call(b.url, '/v1/secret/data/pg', { token });
    assert.equal(again.status, 200, again.text);
    assert.equal((again.body as { data: { data: { v: string } } }).data.data.v, 'one');
  });
});
