/**
 * A PostgreSQL deployment end to end: two real nodes on PostgreSQL, as a role that owns their
 * tables, and one real gateway on PostgreSQL as the least-privilege role whose SQL
 * `leaderway postgres-grants` printed (password logins, row level security). Through the gateway:
 * a secret written and read, then a step-down and a kill -9 of the active under a small load of
 * writes, which the gateway holds through each failover.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { after, before, describe, it } from 'node:test';
import { type Deployment, startDeployment } from '../helpers/gateway-cluster';
import { call, scrapeMetric } from '../helpers/http';
import { createNodeRole, type PostgresServer, roleUrl, startPostgres } from '../helpers/postgres';
import { BIN, waitFor } from '../helpers/procs';
import { startWriters } from '../helpers/writers';

const GATEWAY_PASSWORD = 'gateway-password-0123456789';
/** Small and bounded: two clients, each with one write (then its read-back) in flight. */
const WRITERS = 2;
/** Load before and after each failover, so requests are in flight across it. */
const SETTLE_MS = 1_000;
/**
 * After a step-down the old active waits out its cooldown (3 s in tests) and the new one's lock
 * session must be seen alive by the standby (a fresh one is no witness) before a kill -9.
 */
const BEFORE_KILL_MS = 4_000;

/** `leaderway postgres-grants` as an operator runs it: the SQL it prints. */
function grantsSql(): string {
  return execFileSync(process.execPath, [BIN, 'postgres-grants'], {
    env: { PATH: process.env.PATH ?? '', LEADERWAY_POSTGRESQL_GATEWAY_PASSWORD: GATEWAY_PASSWORD },
    encoding: 'utf8',
  });
}

describe('a gateway on PostgreSQL, as its least-privilege role', () => {
  let pg: PostgresServer;
  let d: Deployment;

  before(async () => {
    pg = await startPostgres({ passwordAuth: true });
    const nodeUrl = await createNodeRole(pg, 'leaderway_node', 'node-password-0123456789');
    // Where `pg` is installed outside node_modules (a worktree sharing another's).
    const nodePath: Record<string, string> = process.env['NODE_PATH']
      ? { NODE_PATH: process.env['NODE_PATH'] }
      : {};
    d = await startDeployment(
      {
        redisUrl: 'redis://127.0.0.1:1', // unused: storage is PostgreSQL
        nodeEnv: { LEADERWAY_STORAGE: 'postgresql', LEADERWAY_POSTGRESQL_URL: nodeUrl, ...nodePath },
        async gatewayEnv() {
          await pg.sql(grantsSql());
          return {
            LEADERWAY_STORAGE: 'postgresql',
            LEADERWAY_POSTGRESQL_URL: roleUrl(pg, 'leaderway_gateway', GATEWAY_PASSWORD),
            // Reads go to the standby too: the gateway reads the membership record as well.
            LEADERWAY_GATEWAY_READ_ROUTING: 'spread',
            ...nodePath,
          };
        },
        stop: () => pg.stop(),
      },
      { nodes: 2 },
    );
  });

  after(async () => {
    await d?.stop();
    // If the deployment never came up, startDeployment stopped PostgreSQL already (idempotent).
    await pg?.stop();
  });

  it('follows the leader and its standby through the gateway role, and serves secrets', async () => {
    await d.active();
    await waitFor(
      async () => (await scrapeMetric(d.gw.metricsUrl, 'leaderway_gateway_standby_members')) === 1,
      15_000,
      'the gateway to read the membership record (its standby)',
    );
    const w = await call(d.gw.url, '/v1/secret/data/pg-gw', { token: d.token, body: { data: { v: 'one' } } });
    assert.equal(w.status, 200, w.text);
    const r = await call(d.gw.url, '/v1/secret/data/pg-gw', { token: d.token });
    assert.equal(r.status, 200, r.text);
    assert.equal((r.body as { data: { data: { v: string } } }).data.data.v, 'one');
    // The gateway's storage was usable from the start: no schema or permission problem logged.
    assert.deepEqual(
      d.gw.logs().filter((l) => l.level === 'warn' && String(l.msg).includes('storage')),
      [],
      'no storage warning from the gateway',
    );
  });

  it('holds writes through a step-down and a kill -9 of the active: none fails, every acknowledged one reads back', async (t) => {
    const writers = startWriters(d.gw.url, d.token, WRITERS);
    try {
      await new Promise((r) => setTimeout(r, SETTLE_MS));
      const first = await d.active();
      const down = await call(first.url, '/v1/sys/step-down', { method: 'PUT', token: d.token });
      assert.equal(down.status, 204, down.text);
      const second = await waitFor(
        async () => {
          const a = await d.active();
          return a !== first ? a : null;
        },
        20_000,
        'a new active after the step-down',
      );
      await new Promise((r) => setTimeout(r, BEFORE_KILL_MS));
      const steppedDown = { ...writers.tally, failedWrites: [...writers.tally.failedWrites] };
      assert.deepEqual(steppedDown.failedWrites, [], 'no write failed across the step-down');
      assert.equal(steppedDown.unknown, 0, 'no write of unknown outcome across the step-down');
      await second.stop('SIGKILL');
      await waitFor(
        async () => (await d.active()) === first,
        20_000,
        'the old active to take over from the killed one',
      );
      await new Promise((r) => setTimeout(r, SETTLE_MS));
    } finally {
      await writers.stop();
    }
    const tally = writers.tally;
    t.diagnostic(
      `${tally.writes} writes, ${tally.reads} reads; longest request ${tally.longestMs.toFixed(0)} ms; ` +
        `${tally.unknown} write(s) answered "outcome unknown"`,
    );
    assert.deepEqual(tally.failedReads, []);
    assert.deepEqual(tally.failedWrites, []);
    // A write in flight on the killed active may or may not have committed: the gateway cannot
    // replay it, and says so (503 "outcome unknown"). At most one per writer can be in flight.
    assert.ok(tally.unknown <= WRITERS, `${tally.unknown} writes of unknown outcome`);
    assert.ok(tally.writes > 0);
    for (const [key, acked] of tally.acked) {
      const r = await call(d.gw.url, `/v1/secret/data/${key}`, { token: d.token });
      assert.equal(r.status, 200, r.text);
      const n = (r.body as { data: { data: { n: number } } }).data.data.n;
      // Never lost; one higher when a write of unknown outcome did commit.
      assert.ok(n === acked || n === acked + 1, `${key}: acknowledged ${acked}, read ${n}`);
    }
  });
});
