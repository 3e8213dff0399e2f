/**
 * A PostgreSQL failover under load through the gateway (issue 28, item 3): two nodes and a
 * gateway on a primary and its synchronous standby, given both hosts in one multi-host URL
 * (`target_session_attrs=read-write`). The primary is killed (-9) while writers go through the
 * gateway; a second later the standby is promoted, as Patroni or a managed service would. The
 * nodes and the gateway find the new primary by themselves, the gateway holds what was not
 * served, and no acknowledged write is lost — read back through the gateway and, independently
 * of leaderway's code, counted in the promoted server's own table.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { type Deployment, startDeployment } from '../helpers/gateway-cluster';
import { call } from '../helpers/http';
import { type PostgresPair, startPostgresPair } from '../helpers/postgres';
import { waitFor } from '../helpers/procs';
import { startWriters } from '../helpers/writers';

const WRITERS = 4;
/** Load before the kill, so writes are in flight across it. */
const SETTLE_MS = 1_500;
/** How long "the operator" takes to notice and promote (Patroni's loop is ~10 s; a test need not wait). */
const DETECTION_MS = 1_000;

describe('PostgreSQL primary killed and its synchronous standby promoted, under load through the gateway', () => {
  let pair: PostgresPair;
  let d: Deployment;

  before(async () => {
    pair = await startPostgresPair({ synchronous: true });
    const url = `${pair.url}?target_session_attrs=read-write`;
    const env = {
      LEADERWAY_STORAGE: 'postgresql',
      LEADERWAY_POSTGRESQL_URL: url,
      // Where `pg` is installed outside node_modules (a worktree sharing another's).
      ...(process.env['NODE_PATH'] ? { NODE_PATH: process.env['NODE_PATH'] } : {}),
    };
    d = await startDeployment(
      {
        redisUrl: 'redis://127.0.0.1:1', // unused: storage is PostgreSQL
        nodeEnv: env,
        gatewayEnv: async () => env,
        stop: () => pair.stop(),
      },
      { nodes: 2 },
    );
  });

  after(async () => {
    await d?.stop();
    await pair?.stop();
  });

  it('no request fails but those in flight at the kill ("outcome unknown"), and nothing acknowledged is lost', async (t) => {
    await d.active();
    const writers = startWriters(d.gw.url, d.token, WRITERS);
    let afterPromotion = 0;
    try {
      await new Promise((r) => setTimeout(r, SETTLE_MS));
      await pair.primary.kill('SIGKILL');
      await new Promise((r) => setTimeout(r, DETECTION_MS));
      await pair.promote();
      const promotedAt = writers.tally.writes;
      await waitFor(
        async () => writers.tally.writes >= promotedAt + 20,
        30_000,
        'writes acknowledged again through the gateway after the promotion',
      );
      afterPromotion = writers.tally.writes - promotedAt;
    } finally {
      await writers.stop();
    }
    const tally = writers.tally;
    t.diagnostic(
      `${tally.writes} writes (${afterPromotion} after the promotion), ${tally.reads} reads; longest request ` +
        `${tally.longestMs.toFixed(0)} ms (outage: kill -9, ${DETECTION_MS} ms, promotion); ` +
        `${tally.unknown} write(s) answered "outcome unknown"`,
    );
    assert.deepEqual(tally.failedReads, [], 'every read was held through the outage and answered');
    assert.deepEqual(tally.failedWrites, [], 'no write failed but as "outcome unknown"');
    assert.ok(tally.unknown <= WRITERS, `${tally.unknown} writes of unknown outcome`);
    for (const [key, acked] of tally.acked) {
      const r = await call(d.gw.url, `/v1/secret/data/${key}`, { token: d.token });
      assert.equal(r.status, 200, r.text);
      const n = (r.body as { data: { data: { n: number } } }).data.data.n;
      assert.ok(n === acked || n === acked + 1, `${key}: acknowledged ${acked}, read ${n}`);
    }
    // Independently of leaderway: the promoted server holds an entry for every writer's key (the
    // values are encrypted; the paths are not secrets). KV v2 keeps versions under the key's path.
    const rows = await pair.standby.sql(
      `SELECT count(*)::int AS n FROM leaderway_kv WHERE path LIKE '%sentinel-%'`,
    );
    assert.ok(Number(rows[0]?.['n']) >= tally.acked.size, 'the promoted server has every key');
  });
});
