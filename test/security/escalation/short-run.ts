/**
 * Short seeded escalation runs as a test suite (test/security/escalation.test.ts): per seed, a
 * fresh cluster, `steps` requests, the history checked. Besides "no violation", each run must
 * have exercised what could fail — tokens made by non-root parents, AppRole logins, requests
 * with dead tokens, reads a standby served itself — or a passing run would prove nothing. A failure replays with
 * `npm run escalation -- --seed <SEED> --steps <STEPS>`.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { replayCommand, summarize } from './report';
import { runEscalation } from './runner';

export interface ShortRuns {
  seeds: number[];
  steps: number;
  /** Budget for one seed's run, cluster start and stop included. */
  timeoutMs: number;
}

/** One `it` per seed. */
export function describeShortRuns(o: ShortRuns): void {
  describe(`escalation: seeded property runs (${o.steps} steps each)`, () => {
    for (const seed of o.seeds) {
      it(`seed ${seed}: no token gains what its creator could not grant`, {
        timeout: o.timeoutMs,
      }, async () => {
        process.stdout.write(`escalation: seed ${seed} (replay: ${replayCommand(seed, o.steps)})\n`);
        const report = await runEscalation({ seed, steps: o.steps });
        process.stdout.write(`${summarize(report)}\n`);
        const st = report.stats;
        assert.ok(
          st.nonRootCreates + st.logins >= 5,
          `too few tokens from non-root callers: ${st.tokensIssued}`,
        );
        assert.ok(st.deadTokenRequests >= 5, `too few requests with dead tokens: ${st.deadTokenRequests}`);
        // Standbys serve reads: the run must have judged reads a standby answered itself, and the
        // per-step attribution must agree with the standbys' own counters.
        const servedSteps = report.history.filter((s) => s.standby === 'served').length;
        assert.ok(report.standbyReads.served > 0, 'no read was served by a standby');
        assert.equal(
          servedSteps,
          report.standbyReads.served,
          "steps marked served vs the standbys' counters",
        );
        assert.deepEqual(
          report.violations.map((v) => `step ${v.step} [${v.rule}] ${v.reason}`),
          [],
          `replay: ${replayCommand(seed, o.steps)}`,
        );
      });
    }
  });
}
