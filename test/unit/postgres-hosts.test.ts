/**
 * Multi-host PostgreSQL URLs (shared/storage/postgres/hosts.ts): split as libpq reads them, the
 * parameter node-postgres does not know removed, and only a writable session used when there
 * is a choice. The failover itself is tested on real servers (postgres-failover.test.ts).
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { DatabaseError } from 'pg';
import { isLwError } from '../../shared/errors';
import { isServerReply, sanitizeError } from '../../shared/storage/postgres/connection';
import { parseTargets } from '../../shared/storage/postgres/hosts';

describe('parseTargets', () => {
  it('one URL per host, credentials, database and other parameters kept', () => {
    const t = parseTargets(
      'postgresql://lw:p%40ss@db-1:5432,db-2:5433,[::1]:5434/vault?sslmode=verify-full&target_session_attrs=read-write&application_name=x',
    );
    assert.deepEqual(t.urls, [
      'postgresql://lw:p%40ss@db-1:5432/vault?sslmode=verify-full&application_name=x',
      'postgresql://lw:p%40ss@db-2:5433/vault?sslmode=verify-full&application_name=x',
      'postgresql://lw:p%40ss@[::1]:5434/vault?sslmode=verify-full&application_name=x',
    ]);
    assert.equal(t.writableOnly, true);
  });

  it('several hosts are always checked for writes; one host only when asked', () => {
    assert.equal(parseTargets('postgres://a:1,b:2/db').writableOnly, true);
    assert.deepEqual(parseTargets('postgres://u@h:1/db'), {
      urls: ['postgres://u@h:1/db'],
      writableOnly: false,
    });
    assert.equal(parseTargets('postgres://h/db?target_session_attrs=primary').writableOnly, true);
    assert.equal(parseTargets('postgres://h/db?target_session_attrs=any').writableOnly, false);
    assert.deepEqual(parseTargets('postgres://h').urls, ['postgres://h']);
  });

  it('refuses what leaderway cannot write through', () => {
    for (const url of [
      'postgres://a,b/db?target_session_attrs=any',
      'postgres://a/db?target_session_attrs=read-only',
      'postgres://a/db?target_session_attrs=standby',
      'postgres://a,,b/db',
      'mysql://a/db',
      'postgres://u:pw@h:abc/db',
    ]) {
      assert.throws(
        () => parseTargets(url),
        (e: unknown) => isLwError(e, 'LW_ERR_CONFIG'),
        url,
      );
    }
  });
});

describe('isServerReply', () => {
  it('is a DatabaseError (or its sanitized copy), never an errno that looks like a SQLSTATE', () => {
    const server = new DatabaseError('duplicate key', 0, 'error');
    server.code = '23505';
    assert.equal(isServerReply(server), true);
    assert.equal(isServerReply(sanitizeError(server)), true);
    for (const code of ['EPIPE', 'EBADF', 'ECONNRESET']) {
      const lost = Object.assign(new Error(code), { code });
      assert.equal(isServerReply(lost), false, code);
      assert.equal(isServerReply(sanitizeError(lost)), false, code);
    }
  });
});
