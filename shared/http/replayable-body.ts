/**
 * A request body that can be sent more than once. A failover may cut a request off before the
 * leader answered; to retry it on the next leader the body must be sent again, yet bodies are
 * streamed, not buffered. So each attempt streams the client's body straight through while a
 * bounded copy (up to `cap` bytes) is kept; an attempt after a failure replays the copy and then
 * continues with the unread rest. A body larger than `cap` streams without a copy and can be
 * retried only if no byte of it was taken yet.
 */
import { Readable } from 'node:stream';

/** Bodies up to this size stay replayable (KV writes are usually far smaller). */
export const DEFAULT_REPLAY_CAP = 1024 * 1024;
/**
 * All copies in the process together stay under this, so memory does not grow with
 * concurrency × body size (1,000 concurrent 256 KB writes otherwise held ~250 MB). A body that
 * finds the budget spent streams without a copy, like one over the cap.
 */
export const REPLAY_BUDGET_BYTES = 64 * 1024 * 1024;
let budgetUsed = 0;

/** Bytes currently held by replay copies in this process (for tests and metrics). */
export function replayBytesHeld(): number {
  return budgetUsed;
}

export class ReplayableBody {
  private readonly chunks: Buffer[] = [];
  private recorded = 0;
  private taken = 0;
  private overflowed = false;
  /** An abandoned attempt consumed a chunk no copy kept: no attempt can send the whole body. */
  private lost = false;
  /** Number of the latest attempt; only it may take an uncopied chunk. */
  private attempts = 0;
  private ended = false;
  private readonly source: AsyncIterator<Buffer>;
  private chain: Promise<unknown> = Promise.resolve();

  constructor(
    source: AsyncIterable<Buffer>,
    private readonly cap = DEFAULT_REPLAY_CAP,
  ) {
    this.source = source[Symbol.asyncIterator]();
  }

  /** Drops the copy and returns its bytes to the budget. Call when the request is done. */
  dispose(): void {
    budgetUsed -= this.recorded;
    this.recorded = 0;
    this.chunks.length = 0;
  }

  /** True when another attempt can send the whole body again. */
  replayable(): boolean {
    return !this.lost && (!this.overflowed || this.taken === 0);
  }

  /** A fresh stream of the whole body for one attempt. Only one attempt may run at a time. */
  stream(): Readable {
    if (!this.replayable()) throw new Error('body is not replayable');
    // The stream must never end the client's request: we read through a shared iterator and
    // never call its return(), so a destroyed attempt leaves the source intact.
    const self = this;
    const attempt = ++this.attempts;
    return Readable.from(
      (async function* () {
        let i = 0;
        for (;;) {
          if (i < self.chunks.length) {
            yield self.chunks[i++] as Buffer;
            continue;
          }
          const next = await self.next(attempt);
          if (next === null) return;
          // A recorded chunk is now in `chunks` (possibly after one an abandoned attempt read):
          // loop back and yield from the copy, in order.
          if (!next.recorded) yield next.chunk;
        }
      })(),
      { objectMode: false },
    );
  }

  /**
   * Reads the next chunk from the source for `attempt`, serialised so an abandoned attempt
   * cannot interleave. An abandoned attempt may still be waiting here when a newer one starts;
   * if the chunk it then takes is not copied, the newer attempt fails instead of silently
   * sending the body with that chunk missing.
   */
  private next(attempt: number): Promise<{ chunk: Buffer; recorded: boolean } | null> {
    const p = this.chain.then(async () => {
      if (this.lost) throw new Error('body is not replayable: an abandoned attempt consumed part of it');
      if (this.ended) return null;
      const r = await this.source.next();
      if (r.done) {
        this.ended = true;
        return null;
      }
      const chunk = r.value;
      this.taken += chunk.length;
      if (
        !this.overflowed &&
        this.recorded + chunk.length <= this.cap &&
        budgetUsed + chunk.length <= REPLAY_BUDGET_BYTES
      ) {
        this.chunks.push(chunk);
        this.recorded += chunk.length;
        budgetUsed += chunk.length;
        return { chunk, recorded: true };
      }
      // Past the cap or the budget: stop keeping a copy (memory stays flat however large).
      this.overflowed = true;
      this.dispose();
      if (attempt !== this.attempts) this.lost = true;
      return { chunk, recorded: false };
    });
    this.chain = p.catch(() => undefined);
    return p;
  }
}
