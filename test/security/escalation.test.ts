/**
 * Issue 23's property, in `npm test`: short seeded runs of random API calls — by live, dead and
 * made-up tokens, through the gateway and straight to a standby or the active — checked against
 * every privilege rule (test/security/escalation/checker.ts). The standbys serve reads themselves
 * (issue 27), so each run also asserts some reads were served by a standby and judged alike. Fixed seeds, so a failure replays:
 * `npm run escalation -- --seed <SEED> --steps <STEPS>`; longer and random-seeded runs with the
 * same command.
 */
import { describeShortRuns } from './escalation/short-run';

describeShortRuns({ seeds: [1, 4, 7], steps: 250, timeoutMs: 60_000 });
