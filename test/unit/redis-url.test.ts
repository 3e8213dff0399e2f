/** Redis URLs: plain ones pass through; Sentinel URLs become ioredis options (auth, TLS). */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { parseRedisUrl } from '../../shared/storage/redis/redis-url';
import { replicasFor } from '../../shared/storage/redis/replication';

describe('parseRedisUrl', () => {
  it('passes redis:// and rediss:// through', () => {
    assert.deepEqual(parseRedisUrl('redis://:pw@h:6379/2'), { url: 'redis://:pw@h:6379/2' });
    assert.deepEqual(parseRedisUrl('rediss://h'), { url: 'rediss://h' });
  });

  it('parses a Sentinel URL: sentinels, master name, db, data and Sentinel credentials', () => {
    const t = parseRedisUrl(
      'redis+sentinel://leaderway-node:p%40ss@10.0.0.1:26380,[::1],s3/mymaster/3?sentinel_username=sen&sentinel_password=s%3Dpw',
    );
    assert.ok('options' in t);
    assert.deepEqual(t.options, {
      name: 'mymaster',
      sentinels: [
        { host: '10.0.0.1', port: 26380 },
        { host: '::1', port: 26379 },
        { host: 's3', port: 26379 },
      ],
      failoverDetector: true,
      username: 'leaderway-node',
      password: 'p@ss',
      db: 3,
      sentinelUsername: 'sen',
      sentinelPassword: 's=pw',
    });
  });

  it('rediss+sentinel:// speaks TLS to the Sentinels and the data servers', () => {
    const t = parseRedisUrl('rediss+sentinel://s1:26379/m');
    assert.ok('options' in t);
    assert.deepEqual(t.options.tls, {});
    assert.deepEqual(t.options.sentinelTLS, {});
    assert.equal(t.options.enableTLSForSentinelMode, true);
    const plain = parseRedisUrl('redis+sentinel://s1/m');
    assert.ok('options' in plain);
    assert.equal(plain.options.tls, undefined);
  });

  it('refuses bad Sentinel URLs without echoing them', () => {
    for (const [url, why] of [
      ['redis+sentinel://s1', /missing \/mastername/],
      ['redis+sentinel://s1/m/x', /db must be a number/],
      ['redis+sentinel://s1:99999/m', /bad sentinel port/],
      ['redis+sentinel://:secret@s1/m?password=x', /unknown parameter password/],
      ['http://secret@h', /must start with/],
    ] as const) {
      assert.throws(
        () => parseRedisUrl(url),
        (err: Error) => why.test(err.message) && !err.message.includes('secret'),
      );
    }
  });
});

describe('replicasFor', () => {
  it('auto: one replica behind Sentinel, none for a single Redis; a number wins', () => {
    const auto = { minReplicas: 'auto' as const, waitTimeoutMs: 1000 };
    assert.equal(replicasFor(auto, 'redis+sentinel://s/m'), 1);
    assert.equal(replicasFor(auto, 'rediss+sentinel://s/m'), 1);
    assert.equal(replicasFor(auto, 'redis://h'), 0);
    assert.equal(replicasFor({ minReplicas: 2, waitTimeoutMs: 1000 }, 'redis://h'), 2);
    assert.equal(replicasFor({ minReplicas: 0, waitTimeoutMs: 1000 }, 'redis+sentinel://s/m'), 0);
  });
});
