/**
 * A request body that can be sent more than once. A failover may cut a request off before the
 * leader answered; to retry it on the next leader the body must be sent again. A bounded copy
 * (up to `cap` bytes) is kept: `prefetch()` reads a small body whole before any upstream
 * resource is taken (so a client that sends slowly holds only its own connection, never a place
 * in the leader's pool), and each attempt replays the copy, then continues with the unread rest.
 * A body larger than the cap, or one that finds no room in the budget (replay-budget.ts: lanes,
 * per-address and per-connection shares), streams without a copy and can be retried only if no
 * uncopied byte of it was sent yet.
 */
import { Readable } from 'node:stream';
import {
  type BodyLane,
  REPLAY_CAP_BYTES,
  type ReplayBudget,
  type ReplayClaim,
  replayBudget,
} from './replay-budget';

/** Bodies up to this size stay replayable (see replay-budget.ts). */
export const DEFAULT_REPLAY_CAP = REPLAY_CAP_BYTES;

export interface ReplayableBodyOptions {
  /** The most this body's copy may hold (default DEFAULT_REPLAY_CAP). */
  cap?: number;
  budget?: ReplayBudget;
  /** Which part of the budget the copy draws on (default `large`). */
  lane?: BodyLane;
  /** Whose share the copy counts against (the client address's group). */
  client?: string;
  /** The connection the body arrives on (its share is one body's; default: a connection of its own). */
  connection?: object;
}

const EMPTY = Buffer.alloc(0);

export class ReplayableBody {
  private readonly chunks: Buffer[] = [];
  private recorded = 0;
  private overflowed = false;
  /** A chunk read by `prefetch` that did not fit the copy; the first attempt sends it. */
  private pending: Buffer | null = null;
  /** An attempt was given a chunk no copy kept: no later attempt can send the whole body. */
  private uncopiedSent = false;
  /** An abandoned attempt consumed a chunk no copy kept. */
  private lost = false;
  /** Number of the latest attempt; only it may take an uncopied chunk. */
  private attempts = 0;
  private ended = false;
  private readonly source: AsyncIterator<Buffer>;
  private chain: Promise<unknown> = Promise.resolve();
  private readonly cap: number;
  /** What the copy holds of the budget. */
  private readonly claim: ReplayClaim;

  constructor(source: AsyncIterable<Buffer>, o: ReplayableBodyOptions = {}) {
    this.source = source[Symbol.asyncIterator]();
    this.cap = o.cap ?? DEFAULT_REPLAY_CAP;
    this.claim = (o.budget ?? replayBudget).claim(o.lane ?? 'large', o.client ?? '', o.connection ?? {});
  }

  /**
   * Drops the copy and returns its bytes to the budget; nothing is copied after. Call when the
   * request is done (idempotent).
   */
  dispose(): void {
    this.claim.release();
    this.overflowed = true;
    this.recorded = 0;
    this.chunks.length = 0;
  }

  /** True when another attempt can send the whole body again. */
  replayable(): boolean {
    return !this.lost && !this.uncopiedSent;
  }

  /**
   * Reads the body into the copy until it ends or no longer fits. Resolves true when the whole
   * body is held (attempts then need nothing more from the client); rejects if the client's
   * stream fails (it went away, or the listener's read timeout cut it off).
   */
  prefetch(): Promise<boolean> {
    const p = this.chain.then(async () => {
      while (!this.ended && !this.overflowed) {
        const r = await this.source.next();
        if (r.done) this.ended = true;
        else if (!this.record(r.value)) this.pending = r.value;
      }
      return this.ended && !this.overflowed;
    });
    this.chain = p.catch(() => undefined);
    return p;
  }

  /**
   * The body for one attempt: the copy itself when it holds the whole body — one chunk as a
   * Buffer, several as an array of them (undici writes each in turn; joining them into one Buffer
   * cost a copy and, at 256 KB per request, most of the gateway's garbage collection) — else a
   * fresh stream (`stream()`).
   */
  forAttempt(): Buffer | Iterable<Buffer> | Readable {
    if (this.ended && !this.overflowed) {
      if (this.chunks.length <= 1) return this.chunks[0] ?? EMPTY;
      return this.chunks.slice();
    }
    return this.stream();
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

  /** Keeps `chunk` in the copy if it fits the cap and the budget. */
  private record(chunk: Buffer): boolean {
    if (!this.overflowed && this.recorded + chunk.length <= this.cap && this.claim.take(chunk.length)) {
      this.chunks.push(chunk);
      this.recorded += chunk.length;
      return true;
    }
    this.overflowed = true;
    return false;
  }

  /**
   * The next chunk for `attempt`, serialised so an abandoned attempt cannot interleave. An
   * abandoned attempt may still be waiting here when a newer one starts; if the chunk it then
   * takes is not copied, the newer attempt fails instead of silently sending the body with that
   * chunk missing.
   */
  private next(attempt: number): Promise<{ chunk: Buffer; recorded: boolean } | null> {
    const p = this.chain.then(async () => {
      if (this.lost) throw new Error('body is not replayable: an abandoned attempt consumed part of it');
      let chunk = this.pending;
      this.pending = null;
      if (chunk === null) {
        if (this.ended) return null;
        const r = await this.source.next();
        if (r.done) {
          this.ended = true;
          return null;
        }
        chunk = r.value;
        if (this.record(chunk)) return { chunk, recorded: true };
      }
      // Past the cap or the budget: this attempt is the body's only one now, and the copy is
      // dropped (memory stays flat however large the body).
      this.uncopiedSent = true;
      this.dispose();
      if (attempt !== this.attempts) this.lost = true;
      return { chunk, recorded: false };
    });
    this.chain = p.catch(() => undefined);
    return p;
  }
}
