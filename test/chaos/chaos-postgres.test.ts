/**
 * A short chaos run on PostgreSQL inside `npm test`: nodes and gateways on a primary with a
 * synchronous standby, one round of every fault (kill -9 of the primary and promotion of its
 * standby, the primary frozen past the lock TTL, leaderway's sessions terminated, the standby
 * lost), fencing checked from the database's own audit triggers (short-run.ts, pg-audit.ts).
 */
import { describeShortRun } from './short-run';

describeShortRun({ seed: 20_261_205, store: 'postgres', windowMs: 35_000, timeoutMs: 240_000 });
