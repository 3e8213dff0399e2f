/**
 * The rules by which nodes and gateways follow a Sentinel failover (shared/storage/redis/
 * sentinel-watch.ts, connection.ts), in milliseconds and without Sentinels: what each Sentinel
 * message does to the process's connections, and the caps on how long a connection or a held
 * request waits before trying again. Each test fails if its rule is removed.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { RETRY_BACKOFF_MAX_MS } from '../../shared/forward/policy';
import {
  RECONNECT_MAX_DELAY_MS,
  reconnectDelayMs,
  reconnectOnReplyError,
} from '../../shared/storage/redis/connection';
import {
  NO_REPLICAS_MESSAGE,
  noReplicasError,
  refusedForMissingReplicas,
} from '../../shared/storage/redis/no-replicas';
import {
  type FollowingClient,
  parseEventPrimary,
  parseSwitchMessage,
  SentinelWatch,
} from '../../shared/storage/redis/sentinel-watch';

/** A connection to `port` on loopback that counts how often it was told to reconnect. */
class FakeClient implements FollowingClient {
  status = 'ready';
  reconnects = 0;
  constructor(public stream: { remoteAddress?: string; remotePort?: number } | undefined) {}
  disconnect(reconnect?: boolean): void {
    if (reconnect) this.reconnects++;
  }
}
const on = (port: number, address = '127.0.0.1') =>
  new FakeClient({ remoteAddress: address, remotePort: port });

/** A watch with no Sentinel connections: messages are fed to it directly. */
function watch(): SentinelWatch {
  return new SentinelWatch('mymaster', [], {});
}

describe('Sentinel messages', () => {
  it('parses +switch-master and the primary an event is about', () => {
    assert.deepEqual(parseSwitchMessage('mymaster 127.0.0.1 6379 127.0.0.1 6380'), {
      name: 'mymaster',
      from: { host: '127.0.0.1', port: 6379 },
      to: { host: '127.0.0.1', port: 6380 },
    });
    assert.equal(parseSwitchMessage('mymaster 127.0.0.1 6379'), null);
    assert.equal(parseSwitchMessage('mymaster a 1 b 70000'), null);
    assert.deepEqual(parseEventPrimary('slave 127.0.0.1:6380 127.0.0.1 6380 @ mymaster 127.0.0.1 6379'), {
      name: 'mymaster',
      primary: { host: '127.0.0.1', port: 6379 },
    });
    assert.deepEqual(parseEventPrimary('master mymaster 127.0.0.1 6379'), {
      name: 'mymaster',
      primary: { host: '127.0.0.1', port: 6379 },
    });
    assert.equal(parseEventPrimary('sentinel abc 127.0.0.1 26379'), null);
  });
});

describe('following +switch-master', () => {
  it('moves a connection that is not on the announced primary, at the first announcement', () => {
    const w = watch();
    const old = on(6379);
    const dual = on(6379, '::ffff:127.0.0.1');
    w.follow(old);
    w.follow(dual);
    w.onMessage('+switch-master', 'mymaster 127.0.0.1 6379 127.0.0.1 6380');
    assert.equal(old.reconnects, 1, 'a connection on the old primary must reconnect at once');
    assert.equal(dual.reconnects, 1);
    w.close();
  });

  it('keeps a connection already on the new primary (the same failover announced again)', () => {
    const w = watch();
    const moved = on(6380);
    w.follow(moved);
    // The Sentinel that ran the failover announces it about a second after the others.
    w.onMessage('+switch-master', 'mymaster 127.0.0.1 6379 127.0.0.1 6380');
    w.onMessage('+switch-master', 'mymaster 127.0.0.1 6379 127.0.0.1 6380');
    assert.equal(moved.reconnects, 0, 'its writes in flight would be answered "outcome unknown"');
    assert.equal(w.stats.kept, 2);
    w.close();
  });

  it('compares addresses when the Sentinels announce host names (announce-hostnames)', async () => {
    const w = watch();
    const moved = on(6380);
    const old = on(6379);
    w.follow(moved);
    w.follow(old);
    w.onMessage('+switch-master', 'mymaster localhost 6379 localhost 6380');
    await new Promise((r) => setTimeout(r, 50)); // the name is looked up
    assert.equal(moved.reconnects, 0, 'localhost:6380 is 127.0.0.1:6380');
    assert.equal(old.reconnects, 1);
    w.close();
  });

  it('ignores other masters, and connections it no longer follows', () => {
    const w = watch();
    const c = on(6379);
    const stop = w.follow(c);
    w.onMessage('+switch-master', 'othermaster 127.0.0.1 6379 127.0.0.1 6380');
    assert.equal(c.reconnects, 0);
    stop();
    w.onMessage('+switch-master', 'mymaster 127.0.0.1 6379 127.0.0.1 6380');
    assert.equal(c.reconnects, 0);
    w.close();
  });
});

describe('a primary being replaced acknowledges nothing', () => {
  it('from +selected-slave, connections to the old primary are dropped and it is refused', () => {
    const w = watch();
    const old = on(6379);
    const other = on(6380);
    w.follow(old);
    w.follow(other);
    w.onMessage('+selected-slave', 'slave 127.0.0.1:6380 127.0.0.1 6380 @ mymaster 127.0.0.1 6379');
    assert.equal(old.reconnects, 1);
    assert.equal(w.isDeposed(old), true, 'a connection that reaches it again must leave');
    assert.equal(other.reconnects, 0);
    assert.equal(w.isDeposed(other), false);
    // Announced: the new primary is never refused; the old one stays refused until the failover
    // is over.
    w.onMessage('+switch-master', 'mymaster 127.0.0.1 6379 127.0.0.1 6380');
    assert.equal(w.isDeposed(other), false);
    assert.equal(w.isDeposed(old), true);
    w.close();
  });

  it('an aborted failover lifts it (the old primary stays primary)', () => {
    const w = watch();
    const old = on(6379);
    w.follow(old);
    w.onMessage('+selected-slave', 'slave 127.0.0.1:6380 127.0.0.1 6380 @ mymaster 127.0.0.1 6379');
    assert.equal(w.isDeposed(old), true);
    w.onMessage('-failover-abort-slave-timeout', 'master mymaster 127.0.0.1 6379');
    assert.equal(w.isDeposed(old), false);
    w.close();
  });

  it('a primary announced again (a later failover back to it) is not refused', () => {
    const w = watch();
    const c = on(6379);
    w.follow(c);
    w.onMessage('+switch-master', 'mymaster 127.0.0.1 6379 127.0.0.1 6380');
    assert.equal(w.isDeposed(c), true);
    w.onMessage('+switch-master', 'mymaster 127.0.0.1 6380 127.0.0.1 6379');
    assert.equal(w.isDeposed(c), false);
    w.close();
  });
});

describe('caps and reply errors', () => {
  it('a connection retries at least every 250 ms, however long Redis was away', () => {
    assert.ok(RECONNECT_MAX_DELAY_MS <= 250);
    for (let times = 1; times <= 10_000; times++)
      assert.ok(reconnectDelayMs(times) <= 250, `attempt ${times}`);
    assert.ok(reconnectDelayMs(1) <= 50, 'the first retry comes quickly');
  });

  it('a held request is retried at least every 250 ms', () => {
    assert.ok(RETRY_BACKOFF_MAX_MS <= 250);
  });

  it('READONLY (a demoted primary) makes the connection ask the Sentinels again; other errors do not', () => {
    assert.equal(
      reconnectOnReplyError(new Error("READONLY You can't write against a read only replica.")),
      true,
    );
    assert.equal(reconnectOnReplyError(new Error('NOREPLICAS Not enough good replicas to write.')), false);
    assert.equal(reconnectOnReplyError(new Error('ERR unknown command')), false);
  });

  it('NOREPLICAS is "storage unavailable" (not served) with a message naming the cause', () => {
    const raw = new Error(
      'ERR Error running script (call to f_x): @user_script:12: NOREPLICAS Not enough good replicas to write.',
    );
    assert.equal(refusedForMissingReplicas(raw), true);
    assert.equal(refusedForMissingReplicas(new Error('READONLY x')), false);
    const e = noReplicasError(raw);
    assert.equal(e.code, 'LW_ERR_STORAGE_UNAVAILABLE');
    assert.equal(e.status, 503);
    assert.equal(e.retryAfter, 1);
    assert.equal(e.message, NO_REPLICAS_MESSAGE);
    assert.match(e.message, /^storage is unavailable: .*min-replicas-to-write.*NOREPLICAS/);
  });
});
