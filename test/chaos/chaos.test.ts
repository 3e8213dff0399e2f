/** A short chaos run on one Redis inside `npm test` (about a minute; short-run.ts). */
import { describeShortRun } from './short-run';

describeShortRun({ seed: 20_251_126, store: 'single', windowMs: 35_000, timeoutMs: 170_000 });
