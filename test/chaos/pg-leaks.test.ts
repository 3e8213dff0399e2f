/**
 * The leak scan's PostgreSQL part (leaks.ts postgresContents) finds a secret stored in the clear:
 * in a data row's value, in another table's row, and in the server's files (heap and WAL) — so
 * "nothing found" after a chaos run on PostgreSQL means something.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { PostgresBackend } from '../../shared/storage/postgres/postgres-backend';
import { PostgresHABackend } from '../../shared/storage/postgres/postgres-ha-backend';
import { type PostgresServer, startPostgres } from '../helpers/postgres';
import { testKeys } from '../helpers/procs';
import { scanForLeaks } from '../security/leak-scan';
import { SECRET_MARKER } from './clients';
import { postgresContents } from './leaks';

describe('leak scan on PostgreSQL', () => {
  let pg: PostgresServer;
  const secrets = { token: 'chaos-test-token-0123456789', keys: testKeys(), valueMarker: SECRET_MARKER };
  const scan = async () =>
    (
      await scanForLeaks(
        { store: postgresContents({ primary: pg, standby: pg }), procs: [], traces: [] },
        secrets,
      )
    ).findings;

  before(async () => {
    pg = await startPostgres();
    // leaderway's own tables, as a node creates them.
    const data = new PostgresBackend({ url: pg.url });
    const ha = new PostgresHABackend({ url: pg.url });
    try {
      await Promise.all([data.start(), ha.start()]);
      await data.put('logical/sealed', Buffer.from('ciphertext only'));
    } finally {
      await Promise.all([data.close(), ha.close()]);
    }
  });

  after(async () => {
    await pg?.stop();
  });

  it('finds nothing in encrypted-looking data, then a clear value in a row, a table and the files', async () => {
    await pg.sql('CHECKPOINT');
    assert.deepEqual(await scan(), []);
    await pg.sql(`INSERT INTO leaderway_kv (path, value) VALUES ('logical/clear', $1)`, [
      Buffer.from(`{"v":"${SECRET_MARKER}-42"}`),
    ]);
    await pg.sql('CREATE TABLE leak_probe (note text)');
    await pg.sql('INSERT INTO leak_probe VALUES ($1)', [`token ${secrets.token}`]);
    await pg.sql('CHECKPOINT');
    const found = await scan();
    const has = (re: RegExp) =>
      assert.ok(
        found.some((f) => re.test(f)),
        `${re} not in:\n${found.join('\n')}`,
      );
    has(/^postgres leaderway_kv row logical\/clear contains a written secret value$/);
    has(/^postgres table leak_probe contains the root token$/);
    has(/^postgres :\d+ file base\/.* contains a written secret value$/);
    has(/^postgres :\d+ file pg_wal\/.* contains a written secret value$/);
  });
});
