/**
 * A gateway on PostgreSQL, against a real server with password logins: the reader's read-only
 * schema check (it never creates a table, refuses a missing or newer schema and heals once a node
 * fixes it), and the least-privilege role of `leaderway postgres-grants`: through it a gateway
 * reads the lock, the advertisement and the membership record and hears events, and cannot read
 * a secret's row, the holder's lock session, or write anything.
 */
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import { Client } from 'pg';
import { advertisementPath } from '../../shared/advertisement';
import { isLwError } from '../../shared/errors';
import { membershipPath } from '../../shared/membership';
import type { HAEvent } from '../../shared/storage/backend';
import { gatewayGrantsSql } from '../../shared/storage/postgres/grants';
import { PostgresBackend } from '../../shared/storage/postgres/postgres-backend';
import { PostgresHABackend } from '../../shared/storage/postgres/postgres-ha-backend';
import { createNodeRole, type PostgresServer, roleUrl, startPostgres } from '../helpers/postgres';
import { rejectsWithCode, tracker, waitFor } from '../helpers/storage-conformance';

const NODE_PASSWORD = 'node-password-0123456789';
const GATEWAY_PASSWORD = 'gateway-password-0123456789';
/** A path of a KV mount's entry: a secret's ciphertext, which a gateway must never read. */
const SECRET_PATH = `logical/${randomUUID()}/data/db-password`;

describe('a gateway on PostgreSQL: read-only schema check and least-privilege role', () => {
  let pg: PostgresServer;
  let nodeUrl = '';
  let gatewayUrl = '';
  const track = tracker();
  before(async () => {
    pg = await startPostgres({ passwordAuth: true });
    nodeUrl = await createNodeRole(pg, 'leaderway_node', NODE_PASSWORD);
    gatewayUrl = roleUrl(pg, 'leaderway_gateway', GATEWAY_PASSWORD);
  });
  after(async () => {
    await pg?.stop();
  });

  /** A session as `url`'s role (like psql), closed by the caller. */
  const session = async (url: string): Promise<Client> => {
    const c = new Client({ connectionString: url });
    c.on('error', () => {});
    await c.connect();
    return c;
  };
  /** The SQLSTATE `sql` fails with as the gateway role (or 'ok'). */
  const asGateway = async (sql: string): Promise<string> => {
    const c = await session(gatewayUrl);
    try {
      await c.query(sql);
      return 'ok';
    } catch (err) {
      return String((err as { code?: unknown }).code);
    } finally {
      await c.end();
    }
  };

  it('a reader checks the schema without creating it, refuses a newer one, and heals', async () => {
    const t = { table: 'lwg_kv_schema', haTable: 'lwg_ha_schema' };
    // As the nodes' role: leaderway_schema, created here, must be theirs.
    const reader = track(new PostgresBackend({ url: nodeUrl, ...t, reader: true }));
    const haReader = track(new PostgresHABackend({ url: nodeUrl, haTable: t.haTable, reader: true }));
    for (const call of [() => reader.get('core/leader-signed/x'), () => haReader.holder()]) {
      await assert.rejects(call(), (err: unknown) => {
        assert.ok(isLwError(err, 'LW_ERR_STORAGE_UNAVAILABLE'), String(err));
        assert.match(
          String((err.cause as Error).message),
          /has no recorded schema: a leaderway node creates it/,
        );
        return true;
      });
    }
    const created = await pg.sql(`SELECT to_regclass($1) AS t, to_regclass($2) AS h`, [t.table, t.haTable]);
    assert.deepEqual(created, [{ t: null, h: null }], 'the reader created no table');
    const node = track(new PostgresBackend({ url: nodeUrl, ...t }));
    await node.put('core/leader-signed/x', Buffer.from('ad'));
    // The same reader retries its check and now reads.
    assert.equal(String(await reader.get('core/leader-signed/x')), 'ad');
    assert.equal(await haReader.holder(), null);
    await pg.sql(`UPDATE leaderway_schema SET version = 99 WHERE component = $1`, [`data:${t.table}`]);
    const older = track(new PostgresBackend({ url: nodeUrl, ...t, reader: true }));
    await assert.rejects(older.get('core/leader-signed/x'), (err: unknown) => {
      assert.ok(isLwError(err, 'LW_ERR_STORAGE_UNAVAILABLE'), String(err));
      assert.match(
        String((err.cause as Error).message),
        /schema version 99; this release reads up to 1: upgrade/,
      );
      return true;
    });
    const [row] = await pg.sql(`SELECT version FROM leaderway_schema WHERE component = $1`, [
      `data:${t.table}`,
    ]);
    assert.equal(row?.['version'], 99, 'the reader migrated nothing back');
    await pg.sql(`UPDATE leaderway_schema SET version = 1 WHERE component = $1`, [`data:${t.table}`]);
    assert.equal(String(await older.get('core/leader-signed/x')), 'ad');
  });

  it('refuses to run before the tables exist', async () => {
    const sql = gatewayGrantsSql({
      table: 'lwg_none',
      haTable: 'lwg_none_ha',
      role: 'leaderway_gateway',
      password: GATEWAY_PASSWORD,
    });
    await assert.rejects(pg.sql(sql), /do not exist yet: start a leaderway node/);
    assert.deepEqual(await pg.sql(`SELECT 1 FROM pg_roles WHERE rolname = 'leaderway_gateway'`), []);
  });

  it('the gateway role reads what a gateway needs and nothing else, and writes nothing', async () => {
    // The nodes' side, as their own role: tables, a secret, an advertisement, a membership
    // record, the lock.
    const node = track(new PostgresBackend({ url: nodeUrl }));
    const nodeHa = track(new PostgresHABackend({ url: nodeUrl }));
    await node.start();
    await nodeHa.start();
    const uuid = randomUUID();
    await node.put(SECRET_PATH, Buffer.from('ciphertext'));
    await node.put(advertisementPath(uuid), Buffer.from('advertisement'));
    await node.put(membershipPath(uuid), Buffer.from('members'));
    const epoch = await nodeHa.acquire(uuid, 30_000);
    assert.ok(epoch);

    const sql = gatewayGrantsSql({
      table: 'leaderway_kv',
      haTable: 'leaderway_ha_locks',
      role: 'leaderway_gateway',
      password: GATEWAY_PASSWORD,
    });
    assert.ok(!sql.includes(GATEWAY_PASSWORD), 'the password is written as a verifier');
    await pg.sql(sql);
    await pg.sql(sql); // again: it resets, and fails on nothing that exists

    // A wrong password is refused: the verifier is checked, not trusted.
    await assert.rejects(session(roleUrl(pg, 'leaderway_gateway', 'not-the-password-000')), /password/);

    // What the gateway's watchers use, through its own backends in reader mode.
    const data = track(new PostgresBackend({ url: gatewayUrl, reader: true }));
    const ha = track(new PostgresHABackend({ url: gatewayUrl, reader: true }));
    await data.start();
    await ha.start();
    assert.equal(String(await data.get(advertisementPath(uuid))), 'advertisement');
    assert.equal(String(await data.get(membershipPath(uuid))), 'members');
    assert.deepEqual(await ha.holder(), { value: uuid, epoch });
    const events: HAEvent[] = [];
    const unsubscribe = ha.subscribe((e) => events.push(e));
    try {
      // LISTEN is connected once a published event arrives.
      await waitFor(
        async () => {
          await nodeHa.publish({ type: 'advertised', epoch });
          return events.some((e) => e.type === 'advertised' && e.epoch === epoch);
        },
        5_000,
        'an event through the gateway role',
      );
    } finally {
      unsubscribe();
    }

    // A secret's row is invisible: absent, not an error, so nothing about it leaks.
    assert.equal(await data.get(SECRET_PATH), null);
    const c = await session(gatewayUrl);
    try {
      const all = await c.query<{ path: string }>('SELECT path FROM leaderway_kv ORDER BY path');
      assert.deepEqual(
        all.rows.map((r) => r.path),
        [advertisementPath(uuid), membershipPath(uuid)].sort(),
      );
    } finally {
      await c.end();
    }
    // Not the holder's lock session, nor any other privilege.
    assert.equal(await asGateway('SELECT ha_identity FROM leaderway_ha_locks'), '42501');
    for (const write of [
      `INSERT INTO leaderway_kv (path, value) VALUES ('core/leader-signed/forged', 'x')`,
      `UPDATE leaderway_kv SET value = 'x' WHERE path ^@ 'core/'`,
      `DELETE FROM leaderway_kv`,
      `UPDATE leaderway_ha_locks SET ha_value = 'forged'`,
      `DELETE FROM leaderway_ha_locks`,
      `TRUNCATE leaderway_kv`,
      `UPDATE leaderway_schema SET version = 1`,
      `CREATE TABLE gw_owned (x int)`,
      `ALTER TABLE leaderway_kv DISABLE ROW LEVEL SECURITY`,
      `DROP POLICY leaderway_gateway_read ON leaderway_kv`,
    ]) {
      assert.equal(await asGateway(write), '42501', write);
    }
    // Through its backend, a write is refused too (and stores nothing).
    await rejectsWithCode(
      data.put(advertisementPath(uuid), Buffer.from('forged')),
      'LW_ERR_STORAGE_UNAVAILABLE',
    );
    assert.equal(String(await node.get(advertisementPath(uuid))), 'advertisement');
    assert.equal(await ha.acquire(randomUUID(), 10_000).catch(() => 'refused'), 'refused');
    assert.deepEqual(await nodeHa.holder(), { value: uuid, epoch });

    // The nodes, as the owner, are not restricted: they still read and write every row.
    assert.equal(String(await node.get(SECRET_PATH)), 'ciphertext');
    await node.put(SECRET_PATH, Buffer.from('ciphertext-2'));
    assert.ok(await nodeHa.renew(uuid, 30_000));

    // What the policies do: without row level security, the same grants show the secret.
    await pg.sql('ALTER TABLE leaderway_kv DISABLE ROW LEVEL SECURITY');
    try {
      assert.equal(String(await data.get(SECRET_PATH)), 'ciphertext-2', 'the check above can fail');
    } finally {
      await pg.sql('ALTER TABLE leaderway_kv ENABLE ROW LEVEL SECURITY');
    }
    assert.equal(await data.get(SECRET_PATH), null);
  });

  it('on the separate lock database of split storage, grants on the lock table only (haOnly)', async () => {
    await pg.sql('CREATE DATABASE lwg_lockdb');
    const inLockDb = (url: string) => url.replace(/\/postgres$/, '/lwg_lockdb');
    const admin = await session(inLockDb(pg.url));
    try {
      await admin.query('GRANT CREATE ON SCHEMA public TO leaderway_node');
      const nodeHa = track(new PostgresHABackend({ url: inLockDb(nodeUrl) }));
      const uuid = randomUUID();
      const epoch = await nodeHa.acquire(uuid, 30_000);
      const grants = (haOnly: boolean) =>
        gatewayGrantsSql({
          table: 'leaderway_kv',
          haTable: 'leaderway_ha_locks',
          role: 'leaderway_gateway',
          password: GATEWAY_PASSWORD,
          haOnly,
        });
      // No data table in this database: the full SQL refuses, the lock table's runs.
      await assert.rejects(admin.query(grants(false)), /do not exist yet/);
      await admin.query('ROLLBACK'); // the script's transaction, aborted (psql would have exited)
      await admin.query(grants(true));
      const ha = track(new PostgresHABackend({ url: inLockDb(gatewayUrl), reader: true }));
      assert.deepEqual(await ha.holder(), { value: uuid, epoch });
      const gw = await session(inLockDb(gatewayUrl));
      try {
        for (const sql of [
          'SELECT ha_identity FROM leaderway_ha_locks',
          `UPDATE leaderway_ha_locks SET ha_value = 'x'`,
        ]) {
          await assert.rejects(
            gw.query(sql),
            (err: unknown) => (err as { code?: string }).code === '42501',
            sql,
          );
        }
      } finally {
        await gw.end();
      }
    } finally {
      await admin.end();
    }
  });

  it('refuses a gateway role that could bypass row level security', async () => {
    await pg.sql('CREATE ROLE lwg_owner_member LOGIN');
    await pg.sql('GRANT leaderway_node TO lwg_owner_member');
    const sql = gatewayGrantsSql({
      table: 'leaderway_kv',
      haTable: 'leaderway_ha_locks',
      role: 'lwg_owner_member',
      password: GATEWAY_PASSWORD,
    });
    await assert.rejects(pg.sql(sql), /may SET ROLE to their owner: it would bypass row level security/);
  });
});
