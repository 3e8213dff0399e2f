/**
 * The LISTEN/NOTIFY fallback (shared/storage/postgres/events.ts): while the listening session
 * cannot connect, the holder is polled every EVENT_POLL_MS and a change is delivered as the
 * reconnect hints, so a gateway or standby hears of a new leader no later than one poll. Here the
 * listening session points at a closed port; the holder reads come from a stand-in for the lock
 * table (the real LISTEN path is tested on a real server in postgres-storage.test.ts).
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { HAEvent, LockHolder } from '../../shared/storage/backend';
import { EVENT_POLL_MS, PgEvents } from '../../shared/storage/postgres/events';
import { freePort } from '../helpers/ports';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('PgEvents poll fallback', () => {
  it('delivers hints when the polled holder changes, and nothing while it does not', async () => {
    let holder: LockHolder | null = { value: 'a', epoch: 1 };
    const events = new PgEvents({
      url: `postgres://nobody@127.0.0.1:${await freePort()}/none`,
      channel: 'lw_test',
      applicationName: 'leaderway-events/test',
      statementTimeoutMs: 500,
      holder: async () => holder,
    });
    const got: HAEvent[] = [];
    const remove = events.subscribe((e) => got.push(e));
    try {
      await sleep(EVENT_POLL_MS * 2.5);
      assert.equal(got.length, 0, 'an unchanged holder is not an event');
      holder = { value: 'b', epoch: 2 };
      await sleep(EVENT_POLL_MS * 1.5);
      assert.deepEqual(
        got.map((e) => e.epoch),
        [0, 0],
        'one poll after the change: the hints (re-read, epoch unknown)',
      );
      holder = null;
      await sleep(EVENT_POLL_MS * 1.5);
      assert.equal(got.length, 4, 'a released lock is a change too');
    } finally {
      remove();
      await events.close();
    }
  });
});
