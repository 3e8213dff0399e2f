/**
 * When a standby may take the lock over (holder liveness): only after the *same* holder record
 * (lock value and connection) has been seen gone, without a break, for the whole grace. Any other
 * observation — alive, unknown, or a different record (the holder renewed onto a new connection,
 * or another node took the lock) — starts over. Pure, so its rules are unit-tested with a clock.
 */
export type Liveness = 'alive' | 'gone' | 'unknown';

export class HolderWatch {
  private gone: { record: string; since: number } | null = null;

  constructor(private readonly graceMs: number) {}

  /** Feeds one observation at time `now`; true when a takeover should be attempted. */
  observe(record: string, state: Liveness, now: number): boolean {
    if (state !== 'gone') {
      this.gone = null;
      return false;
    }
    if (this.gone?.record !== record) {
      this.gone = { record, since: now };
      return false;
    }
    return now - this.gone.since >= this.graceMs;
  }

  /** Forgets what was seen (after a takeover attempt). */
  reset(): void {
    this.gone = null;
  }
}
