/**
 * What only the PostgreSQL backends can get wrong, against a real cluster: the schema and its
 * version, the lease by the database's clock, fencing against a takeover that races a write,
 * holder liveness through the lock session, events after a lost LISTEN connection, outages,
 * unanswered COMMITs, and values kept out of errors.
 */
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import { Client } from 'pg';
import { isLwError } from '../../shared/errors';
import type { HAEvent } from '../../shared/storage/backend';
import { PgPool } from '../../shared/storage/postgres/connection';
import { PostgresBackend, type PostgresBackendOptions } from '../../shared/storage/postgres/postgres-backend';
import { PostgresHABackend } from '../../shared/storage/postgres/postgres-ha-backend';
import { withWriteScope } from '../../shared/storage/write-scope';
import { type PostgresServer, startPostgres } from '../helpers/postgres';
import { rejectsWithCode, sleep, tracker, waitFor } from '../helpers/storage-conformance';

/** Long enough for a loaded CI machine to finish a statement, short for the suite. */
const TIMING_SLACK_MS = 600;
const RECOVERY_TIMEOUT_MS = 10_000;

describe('postgresql storage: what only PostgreSQL can get wrong', () => {
  let pg: PostgresServer;
  const track = tracker();
  before(async () => {
    pg = await startPostgres();
  });
  after(async () => {
    await pg?.stop();
  });

  let n = 0;
  const tables = () => {
    n += 1;
    return { table: `lwp_kv_${n}`, haTable: `lwp_ha_${n}` };
  };
  const openData = async (o: Omit<PostgresBackendOptions, 'url'>, url = pg.url) => {
    const b = track(new PostgresBackend({ url, ...o }));
    await b.start();
    return b;
  };
  const openHA = async (haTable: string, statementTimeoutMs?: number, url = pg.url) => {
    const h = track(new PostgresHABackend({ url, haTable, statementTimeoutMs }));
    await h.start();
    return h;
  };
  /** A separate admin session (like psql), closed by the caller. */
  const admin = async (): Promise<Client> => {
    const c = new Client({ connectionString: pg.url });
    c.on('error', () => {});
    await c.connect();
    return c;
  };

  it('creates its tables and records their schema versions; refuses a newer schema', async () => {
    const t = tables();
    await openData(t);
    const rows = await pg.sql(
      `SELECT component, version FROM leaderway_schema WHERE component LIKE $1 ORDER BY component`,
      [`%lwp_%_${n}`],
    );
    assert.deepEqual(rows, [
      { component: `data:${t.table}`, version: 1 },
      { component: `ha:${t.haTable}`, version: 1 },
    ]);
    const cols = await pg.sql(
      `SELECT column_name, data_type FROM information_schema.columns WHERE table_name = $1 ORDER BY ordinal_position`,
      [t.table],
    );
    assert.deepEqual(cols, [
      { column_name: 'path', data_type: 'text' },
      { column_name: 'value', data_type: 'bytea' },
    ]);
    // A second node starting against the same tables migrates nothing and works.
    const again = await openData(t);
    await again.put('a', Buffer.from('1'));
    await pg.sql(`UPDATE leaderway_schema SET version = 99 WHERE component = $1`, [`data:${t.table}`]);
    const newer = track(new PostgresBackend({ url: pg.url, ...t }));
    await rejectsWithCode(newer.get('a'), 'LW_ERR_CONFIG');
  });

  it('rejects a table name that is not a plain identifier with LW_ERR_CONFIG', () => {
    for (const table of ['', 'Upper', 'has space', 'x;drop', '1abc', 'leaderway_schema', 'x'.repeat(49)]) {
      assert.throws(
        () => new PostgresBackend({ url: pg.url, table }),
        (err: unknown) => isLwError(err, 'LW_ERR_CONFIG'),
        table,
      );
    }
  });

  it('lets exactly one of two racing guarded batches (two nodes initializing) apply', async () => {
    const t = tables();
    const [one, two] = [await openData(t), await openData(t)];
    for (let round = 0; round < 20; round++) {
      const ops = (who: string) => [
        { op: 'put' as const, path: `init/${round}/guard`, value: Buffer.from(who) },
        { op: 'put' as const, path: `init/${round}/keyring`, value: Buffer.from(who) },
      ];
      const results = await Promise.all([
        one.batch(ops('one'), { ifAbsent: `init/${round}/guard` }),
        two.batch(ops('two'), { ifAbsent: `init/${round}/guard` }),
      ]);
      assert.equal(results.filter(Boolean).length, 1, `round ${round}: ${results}`);
      const winner = results[0] ? 'one' : 'two';
      assert.deepEqual(await one.get(`init/${round}/keyring`), Buffer.from(winner));
    }
  });

  it('sets the lease by the database clock', async () => {
    const { haTable } = tables();
    const ha = await openHA(haTable);
    await ha.acquire(randomUUID(), 5000);
    const [row] = await pg.sql(
      `SELECT extract(epoch FROM valid_until - clock_timestamp()) * 1000 AS left_ms FROM ${haTable}
        WHERE ha_key = 'core/lock-lease'`,
    );
    const left = Number(row?.['left_ms']);
    assert.ok(left > 5000 - TIMING_SLACK_MS && left <= 5000, `lease has ${left} ms left`);
    // Moving the lease into the past by the database's clock frees the lock, whatever the
    // nodes' clocks say.
    await pg.sql(`UPDATE ${haTable} SET valid_until = clock_timestamp() - interval '1 ms'`);
    assert.equal(await ha.holder(), null);
  });

  it('keeps the epoch rising across a release and when the table is emptied', async () => {
    const { haTable } = tables();
    const ha = await openHA(haTable);
    const v = randomUUID();
    const e1 = await ha.acquire(v, 5000);
    assert.ok(e1 !== null && (await ha.release(v)));
    const e2 = await ha.acquire(randomUUID(), 5000);
    assert.ok(e2 !== null && e2 > e1);
    await pg.sql(`DELETE FROM ${haTable}`); // a restore from an old backup, say
    const e3 = await ha.acquire(randomUUID(), 5000);
    assert.ok(e3 !== null && e3 > e2, `epoch went from ${e2} to ${e3}`);
  });

  it('a takeover waits for a fenced write in flight, and the deposed holder then commits nothing', async () => {
    const t = tables();
    const data = await openData({ ...t, statementTimeoutMs: 5000 });
    const [a, b] = [await openHA(t.haTable, 5000), await openHA(t.haTable, 5000)];
    await data.put('race/x', Buffer.from('before'));
    const va = randomUUID();
    assert.ok((await a.acquire(va, 300)) !== null);
    const view = data.fenced(va, new AbortController().signal);
    // Hold a row lock on the path, so A's write stops after its fence check, before its write.
    const blocker = await admin();
    try {
      await blocker.query('BEGIN');
      await blocker.query(`SELECT 1 FROM ${t.table} WHERE path = 'race/x' FOR UPDATE`);
      const order: string[] = [];
      const write = view.put('race/x', Buffer.from('from A')).then(
        () => order.push('A committed'),
        (err: unknown) => order.push(`A failed: ${String(err)}`),
      );
      await sleep(400); // A's lease runs out while its write is in flight
      const vb = randomUUID();
      const take = b.acquire(vb, 5000).then((epoch) => order.push(`B acquired ${epoch !== null}`));
      await sleep(300);
      assert.deepEqual(order, [], 'the takeover went ahead while a fenced write of the old holder was open');
      await blocker.query('ROLLBACK');
      await Promise.all([write, take]);
      assert.deepEqual(order, ['A committed', 'B acquired true']);
      assert.deepEqual(await data.get('race/x'), Buffer.from('from A'));
      // From here on, nothing of A's lands.
      await rejectsWithCode(view.put('race/x', Buffer.from('late A')), 'LW_ERR_FENCED_WRITE');
      await data.fenced(vb, new AbortController().signal).put('race/y', Buffer.from('B'));
      assert.deepEqual(await data.get('race/x'), Buffer.from('from A'));
    } finally {
      await blocker.end().catch(() => undefined);
    }
  });

  it("a renewal does not wait for the holder's own writes in flight", async () => {
    const t = tables();
    const data = await openData({ ...t, statementTimeoutMs: 5000 });
    const a = await openHA(t.haTable, 5000);
    await data.put('renew/x', Buffer.from('before'));
    const va = randomUUID();
    assert.ok((await a.acquire(va, 10_000)) !== null);
    const blocker = await admin();
    try {
      await blocker.query('BEGIN');
      await blocker.query(`SELECT 1 FROM ${t.table} WHERE path = 'renew/x' FOR UPDATE`);
      // Open after its fence check (it holds the fence row FOR SHARE), waiting for the row.
      const write = data.fenced(va, new AbortController().signal).put('renew/x', Buffer.from('A'));
      await sleep(200);
      const t0 = performance.now();
      assert.equal(await a.renew(va, 10_000), true);
      const ms = performance.now() - t0;
      assert.ok(ms < 1000, `the renewal waited ${ms.toFixed(0)} ms for a write`);
      await blocker.query('ROLLBACK');
      await write;
    } finally {
      await blocker.end().catch(() => undefined);
    }
  });

  it('tells a holder whose lock session was terminated from a live one, and takes over only then', async () => {
    const { haTable } = tables();
    const data = await openData({ table: `${haTable}_kv`, haTable });
    const [a, b] = [await openHA(haTable), await openHA(haTable)];
    const va = randomUUID();
    const e1 = await a.acquire(va, 10_000);
    assert.ok(e1 !== null);
    const holder = { value: va, epoch: e1 };
    assert.ok(b.liveness);
    const seen = await b.liveness.check(holder);
    assert.equal(seen.state, 'alive');
    const pid = Number(seen.record.split('|')[2]);
    assert.ok(pid > 0, seen.record);
    // The holder's session dies (a crash, a network cut the server noticed).
    await pg.sql('SELECT pg_terminate_backend($1)', [pid]);
    await waitFor(async () => (await b.liveness?.check(holder))?.state === 'gone', 3000, 'gone');
    const gone = await b.liveness.check(holder);
    assert.equal(gone.record, seen.record);
    const vb = randomUUID();
    const e2 = await b.liveness.takeOver(holder, gone.record, vb, 10_000);
    assert.ok(e2 !== null && e2 > e1);
    assert.deepEqual(await a.holder(), { value: vb, epoch: e2 });
    await rejectsWithCode(
      data.fenced(va, new AbortController().signal).put('l/a', Buffer.from('deposed')),
      'LW_ERR_FENCED_WRITE',
    );
    assert.equal(await a.renew(va, 10_000), false, 'the deposed holder cannot renew');
    assert.equal(await data.get('l/a'), null);
  });

  it('refuses a takeover once the holder renewed from a new session', async () => {
    const { haTable } = tables();
    const [a, b] = [await openHA(haTable), await openHA(haTable)];
    const va = randomUUID();
    const e1 = await a.acquire(va, 10_000);
    assert.ok(e1 !== null && b.liveness);
    const holder = { value: va, epoch: e1 };
    const first = await b.liveness.check(holder);
    await pg.sql('SELECT pg_terminate_backend($1)', [Number(first.record.split('|')[2])]);
    await waitFor(async () => (await b.liveness?.check(holder))?.state === 'gone', 3000, 'gone');
    // The holder was alive all along: its next renew (a new session) records that session.
    await waitFor(() => a.renew(va, 10_000), 3000, 'the renew on a new session');
    const now = await b.liveness.check(holder);
    assert.equal(now.state, 'alive');
    assert.notEqual(now.record, first.record);
    assert.equal(await b.liveness.takeOver(holder, first.record, randomUUID(), 10_000), null);
    assert.equal((await b.holder())?.value, va);
  });

  it('delivers reconnect hints after its LISTEN session was terminated, then events again', async () => {
    const { haTable } = tables();
    const [a, b] = [await openHA(haTable), await openHA(haTable)];
    const seen: HAEvent[] = [];
    b.subscribe((e) => seen.push(e));
    await waitFor(
      async () => {
        await a.publish({ type: 'advertised', epoch: 1 });
        await sleep(50);
        return seen.length > 0;
      },
      3000,
      'the subscription',
    );
    seen.length = 0;
    await pg.sql(
      `SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = 'leaderway-events' AND query ILIKE '%${haTable}%'`,
    );
    await waitFor(() => seen.some((e) => e.epoch === 0), RECOVERY_TIMEOUT_MS, 'reconnect hints');
    await waitFor(
      async () => {
        await a.publish({ type: 'released', epoch: 9 });
        await sleep(50);
        return seen.some((e) => e.epoch === 9);
      },
      3000,
      'an event after the reconnect',
    );
    assert.equal(b.stats.malformedEvents, 0);
    await pg.sql(`SELECT pg_notify($1, 'not json')`, [`${haTable}_events`]);
    await waitFor(() => b.stats.malformedEvents === 1, 3000, 'the malformed event to be counted');
  });

  it('answers a COMMIT that never came back "outcome unknown", and a write cut before COMMIT "unavailable", storing nothing', async () => {
    const t = tables();
    const data = await openData({ ...t, statementTimeoutMs: 500 });
    await pg.sql(`CREATE FUNCTION ${t.table}_slow() RETURNS trigger LANGUAGE plpgsql AS $$
      BEGIN IF NEW.path LIKE 'slow/%' THEN PERFORM pg_sleep(2); END IF; RETURN NEW; END $$`);
    // At COMMIT: a deferred constraint trigger runs then.
    await pg.sql(`CREATE CONSTRAINT TRIGGER slow_commit AFTER INSERT ON ${t.table}
      DEFERRABLE INITIALLY DEFERRED FOR EACH ROW WHEN (NEW.path LIKE 'slow/commit%')
      EXECUTE FUNCTION ${t.table}_slow()`);
    // Before COMMIT: a plain trigger on the write itself.
    await pg.sql(`CREATE TRIGGER slow_write BEFORE INSERT ON ${t.table}
      FOR EACH ROW WHEN (NEW.path LIKE 'slow/write%') EXECUTE FUNCTION ${t.table}_slow()`);
    const atCommit = withWriteScope(() => data.put('slow/commit', Buffer.from('1')));
    await rejectsWithCode(atCommit.result, 'LW_ERR_OUTCOME_UNKNOWN');
    const beforeCommit = withWriteScope(() => data.put('slow/write', Buffer.from('1')));
    await rejectsWithCode(beforeCommit.result, 'LW_ERR_STORAGE_UNAVAILABLE');
    assert.equal(beforeCommit.applied(), false);
    await sleep(2500); // the server gives up on both statements (statement_timeout)
    assert.equal(await data.get('slow/write'), null);
    await data.put('fine', Buffer.from('ok')); // the pool is healthy
  });

  it('rolls back a fence check the server refused after BEGIN (sent together), so its connection is reused clean', async () => {
    const t = tables();
    const data = await openData({ ...t, maxParallel: 1 }); // one connection: the next call gets it
    const ha = await openHA(t.haTable);
    const v = randomUUID();
    assert.ok((await ha.acquire(v, 10_000)) !== null);
    const view = data.fenced(v, new AbortController().signal);
    await view.put('f/a', Buffer.from('1'));
    // The fence reads the lock table: renamed away, its SELECT fails after BEGIN succeeded.
    await pg.sql(`ALTER TABLE ${t.haTable} RENAME TO ${t.haTable}_away`);
    await rejectsWithCode(view.put('f/b', Buffer.from('2')), 'LW_ERR_STORAGE_UNAVAILABLE');
    await pg.sql(`ALTER TABLE ${t.haTable}_away RENAME TO ${t.haTable}`);
    // Left inside the aborted transaction, the connection would refuse these (25P02).
    assert.deepEqual(await data.get('f/a'), Buffer.from('1'));
    await view.put('f/c', Buffer.from('3'));
    assert.equal(await data.get('f/b'), null);
  });

  it('gives a DELETE and an upsert sent together each its own client timeout', async () => {
    const t = tables();
    const data = await openData({ ...t, statementTimeoutMs: 1000 });
    await data.put('two/old', Buffer.from('0'));
    // Each statement takes 600 ms, well under the 1 s timeout; together 1.2 s, over it.
    await pg.sql(`CREATE FUNCTION ${t.table}_slow() RETURNS trigger LANGUAGE plpgsql AS $$
      BEGIN PERFORM pg_sleep(0.6); RETURN COALESCE(NEW, OLD); END $$`);
    await pg.sql(`CREATE TRIGGER slow_del BEFORE DELETE ON ${t.table}
      FOR EACH ROW WHEN (OLD.path LIKE 'two/%') EXECUTE FUNCTION ${t.table}_slow()`);
    await pg.sql(`CREATE TRIGGER slow_put BEFORE INSERT ON ${t.table}
      FOR EACH ROW WHEN (NEW.path LIKE 'two/%') EXECUTE FUNCTION ${t.table}_slow()`);
    await data.batch([
      { op: 'delete', path: 'two/old' },
      { op: 'put', path: 'two/new', value: Buffer.from('1') },
    ]);
    assert.equal(await data.get('two/old'), null);
    assert.deepEqual(await data.get('two/new'), Buffer.from('1'));
  });

  it('stores nothing when the server refuses an upsert sent with a DELETE that ran, and reuses the connection clean', async () => {
    const t = tables();
    const data = await openData({ ...t, maxParallel: 1 });
    await data.put('keep', Buffer.from('k'));
    await pg.sql(`CREATE FUNCTION ${t.table}_boom() RETURNS trigger LANGUAGE plpgsql AS $$
      BEGIN RAISE EXCEPTION 'refused'; END $$`);
    await pg.sql(`CREATE TRIGGER boom BEFORE INSERT ON ${t.table}
      FOR EACH ROW WHEN (NEW.path LIKE 'boom%') EXECUTE FUNCTION ${t.table}_boom()`);
    const w = withWriteScope(() =>
      data.batch([
        { op: 'delete', path: 'keep' },
        { op: 'put', path: 'boom', value: Buffer.from('1') },
      ]),
    );
    await rejectsWithCode(w.result, 'LW_ERR_STORAGE_UNAVAILABLE');
    assert.equal(w.applied(), false, 'not applied: a gateway may send it again');
    assert.deepEqual(await data.get('keep'), Buffer.from('k'), 'the DELETE was rolled back');
    await data.put('after', Buffer.from('a')); // the one connection is out of the transaction
  });

  it('never puts a stored value into an error', async () => {
    const t = tables();
    const data = await openData(t);
    await pg.sql(`ALTER TABLE ${t.table} ADD CONSTRAINT short CHECK (octet_length(value) < 4)`);
    // Short: the server quotes at most 64 characters of each column in an error's detail.
    const secret = `s3-${randomUUID().slice(0, 8)}`;
    const err = await data.put('p', Buffer.from(secret)).then(
      () => assert.fail('the put should fail'),
      (e: unknown) => e,
    );
    assert.ok(isLwError(err, 'LW_ERR_STORAGE_UNAVAILABLE'));
    const hex = Buffer.from(secret).toString('hex');
    const cause = (err as { cause?: Error }).cause;
    assert.ok(cause, 'the cause is kept (sanitized)');
    for (const e of [err as Error, cause]) {
      for (const key of Reflect.ownKeys(e)) {
        const v = String((e as unknown as Record<PropertyKey, unknown>)[key]);
        assert.ok(!v.includes(secret) && !v.includes(hex), `a stored value leaked in ${String(key)}: ${v}`);
      }
    }
  });

  it('a commit that came with a generic WARNING (01000), in whatever language, is not acknowledged', async () => {
    // What a cancelled wait for the synchronous standby sends, as under a German lc_messages.
    const pool = track(
      new PgPool({
        url: pg.url,
        applicationName: 'lw-test',
        statementTimeoutMs: 2_000,
        max: 1,
        idleTimeoutMs: 0,
      }),
    );
    const warn = `DO $$ BEGIN RAISE WARNING 'Warten auf synchrone Replikation abgebrochen' USING ERRCODE = '01000'; END $$`;
    await rejectsWithCode(
      pool.transaction(async (c) => {
        await c.query(warn);
      }),
      'LW_ERR_OUTCOME_UNKNOWN',
    );
    await rejectsWithCode(
      pool.run((c) => c.query(warn)),
      'LW_ERR_STORAGE_UNAVAILABLE',
    );
    assert.equal((await pool.run((c) => c.query('SELECT 1 AS one'))).rows[0]?.one, 1, 'the pool works on');
  });

  it('refuses a NUL in a path as a bad request (400), not an outage, storing nothing', async () => {
    const b = await openData(tables());
    for (const call of [
      () => b.put('a\u0000b', Buffer.from('x')),
      () => b.get('a\u0000b'),
      () => b.list('a\u0000'),
      () =>
        b.batch([
          { op: 'put', path: 'fine', value: Buffer.from('1') },
          { op: 'put', path: '\u0000', value: Buffer.from('2') },
        ]),
    ]) {
      await rejectsWithCode(call(), 'LW_ERR_BAD_REQUEST');
    }
    assert.equal(await b.get('fine'), null, 'the batch stored none of its writes');
  });

  it('fails fast while PostgreSQL is paused or down, and the same objects recover', async () => {
    const outage = await startPostgres();
    const local: Array<{ close(): Promise<void> }> = [];
    try {
      const t = tables();
      const data = new PostgresBackend({ url: outage.url, ...t, statementTimeoutMs: 500 });
      const ha = new PostgresHABackend({ url: outage.url, haTable: t.haTable, statementTimeoutMs: 500 });
      local.push(data, ha);
      await Promise.all([data.start(), ha.start()]);
      await data.put('k', Buffer.from('v'));

      outage.pause();
      let t0 = performance.now();
      await rejectsWithCode(data.get('k'), 'LW_ERR_STORAGE_UNAVAILABLE');
      await rejectsWithCode(ha.holder(), 'LW_ERR_STORAGE_UNAVAILABLE');
      const paused = performance.now() - t0;
      outage.resume();
      assert.ok(paused < 2 * (500 + TIMING_SLACK_MS), `rejected in ${paused} ms`);
      await waitFor(async () => (await data.get('k')) !== null, RECOVERY_TIMEOUT_MS, 'answers after resume');

      await outage.kill('SIGKILL');
      t0 = performance.now();
      await rejectsWithCode(data.put('k', Buffer.from('w')), 'LW_ERR_STORAGE_UNAVAILABLE');
      await rejectsWithCode(ha.acquire(randomUUID(), 1000), 'LW_ERR_STORAGE_UNAVAILABLE');
      await ha.publish({ type: 'released', epoch: 1 }); // best effort: resolves
      assert.ok(performance.now() - t0 < 2500 + TIMING_SLACK_MS, 'rejected quickly');
      // A backend constructed while PostgreSQL is down fails to start, then heals like the others.
      const late = new PostgresBackend({ url: outage.url, ...t });
      local.push(late);
      await rejectsWithCode(late.start(200), 'LW_ERR_STORAGE_UNAVAILABLE');

      await outage.start();
      await waitFor(async () => (await data.get('k')) !== null, RECOVERY_TIMEOUT_MS, 'reconnect');
      assert.deepEqual(await late.get('k'), Buffer.from('v'));
      assert.ok((await ha.acquire(randomUUID(), 1000)) !== null);
    } finally {
      outage.resume();
      await Promise.allSettled(local.map((c) => c.close()));
      await outage.stop();
    }
  });
});
