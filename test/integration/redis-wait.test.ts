/**
 * A write Redis applied but whose WAIT then failed (here: the user may not run WAIT; in a Redis
 * failover: the connection went away between the two) is "applied, outcome unknown": never an
 * error that reads as "nothing stored", or a gateway would send the write again and it would be
 * stored twice (found by the Sentinel chaos run, seed 4243).
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { isLwError } from '../../shared/errors';
import { RedisBackend } from '../../shared/storage/redis/redis-backend';
import { withWriteScope } from '../../shared/storage/write-scope';
import { type RedisServer, startRedis } from '../helpers/redis';

describe('a write whose WAIT fails after Redis applied it', () => {
  let redis: RedisServer;
  let backend: RedisBackend;

  before(async () => {
    redis = await startRedis();
    await redis.cli('ACL', 'SETUSER', 'nowait', 'on', '>pw-0123456789', '~*', '&*', '+@all', '-wait');
    backend = new RedisBackend({
      url: `redis://nowait:pw-0123456789@127.0.0.1:${redis.port}`,
      prefix: 'wait-test',
      replication: { minReplicas: 1, waitTimeoutMs: 200 },
    });
    await backend.start();
  });

  after(async () => {
    await backend?.close();
    await redis?.stop();
  });

  it('is outcome unknown and counted as applied, and the value is stored', async () => {
    const scope = withWriteScope(() => backend.put('k', Buffer.from('v')));
    const err = await scope.result.then(
      () => null,
      (e: unknown) => e,
    );
    assert.ok(isLwError(err, 'LW_ERR_OUTCOME_UNKNOWN'), `got ${(err as Error)?.message}`);
    assert.equal(scope.applied(), true, 'the request must count as having stored something');
    assert.equal((await backend.get('k'))?.toString(), 'v', 'positive control: Redis applied it');
  });
});
