/**
 * The active node's token cleanup: every TIDY_INTERVAL_MS it deletes expired tokens (with their
 * trees) and tokens whose parent is gone. Expiry itself is enforced on every request; this only
 * keeps storage from filling with dead entries. Runs for one term: started when the node becomes
 * active, stopped when it steps down.
 */
import type { Logger } from 'pino';
import type { SecureStorage } from '../barrier/secure-storage';
import type { TokenStore } from './token-store';

/** Upstream tidies leases continuously; a minute keeps dead entries few without scanning often. */
const TIDY_INTERVAL_MS = 60_000;

export class TokenTidy {
  private timer: NodeJS.Timeout | undefined;
  private running = false;

  constructor(
    private readonly tokens: TokenStore,
    private readonly log: Logger,
  ) {}

  start(storage: SecureStorage): void {
    this.stop();
    this.timer = setInterval(() => void this.run(storage), TIDY_INTERVAL_MS);
    this.timer.unref();
  }

  stop(): void {
    clearInterval(this.timer);
    this.timer = undefined;
  }

  private async run(storage: SecureStorage): Promise<void> {
    if (this.running) return;
    this.running = true;
    try {
      const revoked = await this.tokens.tidy(storage);
      if (revoked > 0) this.log.info({ revoked }, 'expired tokens removed');
    } catch (err) {
      // A fenced write means the term is over; anything else is retried at the next round.
      this.log.warn({ err: (err as Error).message }, 'token cleanup stopped for this round');
    } finally {
      this.running = false;
    }
  }
}
