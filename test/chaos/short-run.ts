/**
 * A short seeded chaos run as a test suite (chaos.test.ts, chaos-sentinel.test.ts,
 * chaos-postgres.test.ts): faults for
 * `windowMs` under seven KV clients (through both gateways and directly to nodes, standbys
 * serving reads) and the token and policy clients, at least one full round so every kind
 * appears, then the history, fencing and logs checked and the store, logs and traces scanned for
 * secrets in the clear. A failure replays with `npm run chaos -- --minutes 1 --seed <SEED> --store <store>`.
 */
import assert from 'node:assert/strict';
import { before, describe, it } from 'node:test';
import { type ChaosResult, runChaos } from './chaos';
import { faultRound } from './history';
import { leakScan } from './leaks';
import { type StoreKind, storeLabel } from './store';

export interface ShortRun {
  seed: number;
  store: StoreKind;
  /** Time the scheduler keeps injecting faults (setup and the final read come on top). */
  windowMs: number;
  /** Budget for the whole run. */
  timeoutMs: number;
}

export function describeShortRun(o: ShortRun): void {
  const round = faultRound(o.store);
  const minFaults = round.length;
  describe(`chaos: a short seeded run (${storeLabel(o.store)})`, () => {
    let result: ChaosResult;
    let leaks: { findings: string[]; line: string } = { findings: [], line: '' };

    before(
      async () => {
        process.stdout.write(
          `chaos: seed ${o.seed} (replay: npm run chaos -- --minutes 1 --seed ${o.seed} --store ${o.store})\n`,
        );
        result = await runChaos({
          seed: o.seed,
          store: o.store,
          durationMs: o.windowMs,
          minFaults,
          // Between a fault's recovery (the cluster already healthy again: the scheduler waits for
          // it) and the next fault, 0.5–1.5 s instead of the long runs' 1–3 s: the same faults in
          // the same order (each settle draws one number either way), each kind still at least
          // once, with less idle time on top of the recovery.
          settleMinMs: 500,
          settleMaxMs: 1_500,
          traces: true,
          log: (l) => process.stdout.write(`chaos: ${l}\n`),
          beforeStop: async (c, traces) => {
            leaks = await leakScan(c, traces);
          },
        });
        process.stdout.write(`${result.summary}\n${leaks.line}\n`);
      },
      { timeout: o.timeoutMs },
    );

    it(`injects at least ${minFaults} faults, every kind at least once`, () => {
      assert.ok(result.faults >= minFaults, `only ${result.faults} faults`);
      const kinds = new Set(result.figures.map((f) => f.kind));
      assert.deepEqual(
        [...new Set(round)].filter((k) => !kinds.has(k)),
        [],
      );
    });

    it('records a real history: acknowledged writes, reads, and fencing evidence from the store', () => {
      assert.ok(result.stats.ackedWrites > 100, `only ${result.stats.ackedWrites} acknowledged writes`);
      assert.ok(result.stats.readsChecked > 100, `only ${result.stats.readsChecked} reads checked`);
      assert.ok(result.fencing.writesChecked > 100, 'the store saw too few writes to vouch for fencing');
      assert.ok(result.fencing.acquisitions.length >= 3, 'too few leadership terms observed');
    });

    it('reads from standbys directly: KV reads, token uses and policy reads checked there', () => {
      const onStandbys = Object.entries(result.readsByTarget)
        .filter(([via]) => via.startsWith('standby:'))
        .reduce((a, [, n]) => a + n, 0);
      assert.ok(onStandbys > 100, `only ${onStandbys} KV reads sent to standbys`);
      assert.ok(result.standbyReads.served > 100, `standbys served only ${result.standbyReads.served} reads`);
      assert.ok(
        result.tokens.directStandby > 20,
        `only ${result.tokens.directStandby} token uses on standbys`,
      );
      assert.ok(
        result.tokens.afterRevocation > 20,
        `only ${result.tokens.afterRevocation} uses after revocation`,
      );
      assert.ok(
        result.policy.checkedDirect > 20,
        `only ${result.policy.checkedDirect} policy reads checked on nodes`,
      );
    });

    it('finds no violation: durability, single writer, CAS, fencing, epochs, no crash', () => {
      assert.deepEqual(result.violations, []);
    });

    it('leaves no token, secret value, key or advertisement in the clear', () => {
      assert.deepEqual(leaks.findings, []);
    });
  });
}
