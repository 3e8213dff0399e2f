/**
 * A short chaos run on a Sentinel topology inside `npm test`: one round of every fault, Redis
 * failovers (kill -9, SIGSTOP past down-after, an empty-disk restart) among them (short-run.ts).
 */
import { describeShortRun } from './short-run';

describeShortRun({ seed: 20_261_204, store: 'sentinel', windowMs: 40_000, timeoutMs: 360_000 });
