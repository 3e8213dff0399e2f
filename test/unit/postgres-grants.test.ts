/**
 * The SQL of `leaderway postgres-grants` (its effect on a real server is checked by
 * test/integration/postgres-grants.test.ts): rows limited to exactly the paths the gateway's
 * watchers read, names validated, the password never in the clear.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { advertisementPath } from '../../shared/advertisement';
import { isLwError } from '../../shared/errors';
import { membershipPath } from '../../shared/membership';
import { gatewayGrantsSql, scramVerifier } from '../../shared/storage/postgres/grants';

const base = { table: 'leaderway_kv', haTable: 'leaderway_ha_locks', role: 'leaderway_gateway' };
const PASSWORD = 'gateway-password-0123456789';

describe('leaderway postgres-grants SQL', () => {
  it('limits rows to the lock, the advertisements and the membership records the gateway reads', () => {
    const sql = gatewayGrantsSql({ ...base, password: PASSWORD });
    // The policies name the prefixes of the paths the leader and membership watchers read.
    const [ad, members] = [advertisementPath(''), membershipPath('')];
    assert.ok(sql.includes(`USING (path ^@ '${ad}' OR path ^@ '${members}')`), sql);
    assert.ok(sql.includes(`USING (ha_key IN ('core/lock', 'core/lock-lease'))`), sql);
    assert.match(sql, /GRANT SELECT \(ha_key, ha_value, valid_until, epoch\) ON leaderway_ha_locks/);
    assert.doesNotMatch(sql, /GRANT (INSERT|UPDATE|DELETE|ALL)/);
    assert.match(sql, /NOBYPASSRLS/);
  });

  it('for the separate lock database (haOnly), names no data table', () => {
    const sql = gatewayGrantsSql({ ...base, password: PASSWORD, haOnly: true });
    assert.ok(!sql.includes('leaderway_kv'), sql);
    assert.ok(sql.includes(`USING (ha_key IN ('core/lock', 'core/lock-lease'))`), sql);
  });

  it('writes the password as a fresh SCRAM-SHA-256 verifier, never in the clear', () => {
    const one = gatewayGrantsSql({ ...base, password: PASSWORD });
    const two = gatewayGrantsSql({ ...base, password: PASSWORD });
    assert.ok(!one.includes(PASSWORD));
    assert.match(one, /PASSWORD 'SCRAM-SHA-256\$4096:[A-Za-z0-9+/=]+\$[A-Za-z0-9+/=]+:[A-Za-z0-9+/=]+'/);
    assert.notEqual(one, two, 'a fresh salt each time');
    assert.throws(() => scramVerifier('pässword-with-umlaut'), /printable ASCII/);
  });

  it('refuses names that are not plain identifiers', () => {
    for (const bad of [{ role: 'Gateway' }, { role: 'x; DROP TABLE y' }, { table: 'a-b' }, { haTable: '' }]) {
      assert.throws(
        () => gatewayGrantsSql({ ...base, ...bad, password: PASSWORD }),
        (err: unknown) => isLwError(err, 'LW_ERR_CONFIG'),
        JSON.stringify(bad),
      );
    }
  });
});
