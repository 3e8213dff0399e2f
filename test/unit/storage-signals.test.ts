/**
 * StorageSignals: what storage reports outside any call reaches the node through it — a liveness
 * refusal once, and remembered for a node that subscribes later (the HA backend may find out
 * during the warm-up, before the node exists); every unreplicated write.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { openStorage } from '../../shared/storage/open';
import { StorageSignals } from '../../shared/storage/signals';

describe('StorageSignals', () => {
  it('reports a liveness refusal once and remembers it; counts unreplicated writes', () => {
    const s = new StorageSignals();
    const seen: string[] = [];
    s.on('liveness-refused', (r) => seen.push(r));
    s.refuseLiveness('NOPERM client');
    s.refuseLiveness('again');
    assert.deepEqual(seen, ['NOPERM client']);
    assert.equal(s.livenessRefused, 'NOPERM client', 'a later subscriber can still learn it');
    let unreplicated = 0;
    s.on('unreplicated', () => unreplicated++);
    s.unreplicatedWrite();
    s.unreplicatedWrite();
    assert.equal(unreplicated, 2);
  });

  it('comes with the opened storage', async () => {
    const opened = openStorage({ type: 'inmem', redisUrl: '', prefix: 'p' }, null, {
      lockCommandTimeoutMs: 100,
    });
    assert.ok(opened.signals instanceof StorageSignals);
    assert.equal(opened.signals.livenessRefused, null);
    await Promise.all([opened.data.close(), opened.ha.close()]);
  });
});
