/**
 * A short chaos run inside `npm test`: about a minute of faults (every kind at least once) under
 * six clients, with a fixed seed so a failure can be replayed with
 * `npm run chaos -- --minutes 1 --seed <SEED>`. Then the history, fencing and logs are checked,
 * and Redis, logs and traces are scanned for secrets in the clear.
 */
import assert from 'node:assert/strict';
import { before, describe, it } from 'node:test';
import { type ChaosResult, runChaos } from './chaos';
import { FAULT_KINDS } from './history';
import { leakScan } from './leaks';

const SEED = 20_251_126;
/** Time the scheduler keeps injecting faults (setup and the final read come on top). */
const FAULT_WINDOW_MS = 50_000;
const MIN_FAULTS = FAULT_KINDS.length;

describe('chaos: a short seeded run', () => {
  let result: ChaosResult;
  let leaks: { findings: string[]; line: string } = { findings: [], line: '' };

  before(
    async () => {
      process.stdout.write(`chaos: seed ${SEED} (replay: npm run chaos -- --minutes 1 --seed ${SEED})\n`);
      result = await runChaos({
        seed: SEED,
        durationMs: FAULT_WINDOW_MS,
        minFaults: MIN_FAULTS,
        traces: true,
        log: (l) => process.stdout.write(`chaos: ${l}\n`),
        beforeStop: async (c, traces) => {
          leaks = await leakScan(c, traces);
        },
      });
      process.stdout.write(`${result.summary}\n${leaks.line}\n`);
    },
    { timeout: 170_000 },
  );

  it(`injects at least ${MIN_FAULTS} faults, every kind at least once`, () => {
    assert.ok(result.faults >= MIN_FAULTS, `only ${result.faults} faults`);
    const kinds = new Set(result.figures.map((f) => f.kind));
    assert.deepEqual(
      [...FAULT_KINDS].filter((k) => !kinds.has(k)),
      [],
    );
  });

  it('records a real history: acknowledged writes, reads, and fencing evidence from Redis', () => {
    assert.ok(result.stats.ackedWrites > 100, `only ${result.stats.ackedWrites} acknowledged writes`);
    assert.ok(result.stats.readsChecked > 100, `only ${result.stats.readsChecked} reads checked`);
    assert.ok(result.fencing.writesChecked > 100, 'MONITOR saw too few writes to vouch for fencing');
    assert.ok(result.fencing.acquisitions.length >= 3, 'too few leadership terms observed');
  });

  it('finds no violation: durability, single writer, CAS, fencing, no crash', () => {
    assert.deepEqual(result.violations, []);
  });

  it('leaves no token, secret value, key or advertisement in the clear', () => {
    assert.deepEqual(leaks.findings, []);
  });
});
