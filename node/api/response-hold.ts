/**
 * What one request holds of the node's response budget (LEADERWAY_RESPONSE_BUDGET): the size of
 * the stored entries it reads, admitted before they are fetched (SecureStorage.getAdmitted) and
 * held until its response is done — flushed to the connection, or the client gone ('close') —
 * because the answer stays in memory until then. Every way a request ends closes its response,
 * so the bytes always come back: an error is answered (or the stream destroyed), a client that
 * leaves closes it, and a read still waiting when that happens is taken out of the queue.
 *
 * Deadlock-free by one rule: a request waits only while it holds nothing. Once it holds bytes,
 * more are added without waiting (a second entry, or an entry that grew between being measured
 * and read), so no request keeps others out while it waits for them.
 */
import { LwError } from '../../shared/errors';
import type { AnyResponse } from '../../shared/http/respond';
import type { EntryAdmission } from '../barrier/secure-storage';
import type { ByteBudget } from './byte-budget';

/**
 * Retry-After of a read refused for want of room: responses in progress flush within moments,
 * so a second later the client finds room (or waits its turn again).
 */
const OVERLOADED_RETRY_AFTER_S = 1;

function overloaded(): LwError {
  return new LwError('LW_ERR_OVERLOADED', 'too many large responses in progress on the active node; retry', {
    retryAfter: OVERLOADED_RETRY_AFTER_S,
  });
}

/** The client went away while its read waited: nobody sees this answer, it only ends the handler. */
function clientGone(): LwError {
  return new LwError('LW_ERR_OVERLOADED', 'the client left while its read waited for the response budget');
}

/** How a request takes part of the budget and gives it back. */
export interface ResponseBudgetOptions {
  budget: ByteBudget;
  /** The longest a read waits for room before it is answered 503 (LEADERWAY_RESPONSE_BUDGET_WAIT). */
  maxWaitMs: number;
}

/** One request's share of the budget, given back when its response closes. */
export class ResponseHold implements EntryAdmission {
  private bytes = 0;
  private closed = false;
  /** Aborts a wait in the queue once the response is closed (made when a wait starts). */
  private ended: AbortController | undefined;

  constructor(
    private readonly o: ResponseBudgetOptions,
    res: AnyResponse,
  ) {
    res.once('close', () => this.close());
    // The client may have gone while the request was routed and authenticated: its 'close' has
    // then passed, and bytes taken now would never be given back.
    const stream = (res as { stream?: { destroyed?: boolean } }).stream;
    if (res.destroyed || res.writableFinished || stream?.destroyed) this.close();
  }

  /** Bytes this request holds now. */
  get held(): number {
    return this.bytes;
  }

  async admit(bytes: number): Promise<void> {
    if (this.closed) throw clientGone();
    if (bytes <= 0) return;
    const { budget } = this.o;
    if (this.bytes > 0) {
      budget.add(bytes);
      this.bytes += bytes;
      return;
    }
    // An entry larger than the whole budget waits until nothing else is held and is served alone.
    const n = Math.min(bytes, budget.capacity);
    // Most requests fit at once: no signal to make (and abort at close) unless they must wait.
    if (!budget.tryTake(n)) {
      this.ended ??= new AbortController();
      const granted = await budget.acquire(n, this.ended.signal, this.o.maxWaitMs);
      if (granted === 'timeout') throw overloaded();
      if (granted === 'aborted') throw clientGone();
      // Granted, but the response may have closed before this continuation ran.
      if (this.closed) {
        budget.release(n);
        throw clientGone();
      }
    }
    this.bytes += n;
  }

  giveBack(bytes: number): void {
    const n = Math.min(Math.max(0, bytes), this.bytes);
    this.bytes -= n;
    this.o.budget.release(n);
  }

  /** Gives everything back and cancels a wait in progress. Idempotent. */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.ended?.abort();
    this.o.budget.release(this.bytes);
    this.bytes = 0;
  }
}
