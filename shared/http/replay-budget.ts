/**
 * The memory a gateway may spend on copies of request bodies kept for a replay
 * (replayable-body.ts), shared so that no one client can take it from the others. Bytes are
 * counted as they arrive — a body sent slowly holds only what it has sent — and a body's bytes
 * are given back exactly once, when its request ends, however it ends (ReplayClaim.release).
 *
 * Two lanes:
 *  - `small`: bodies that declare at most SMALL_BODY_BYTES (logins, typical KV writes). A reserve
 *    only they may use, so large bodies held back by slow senders can never crowd them out. Issue
 *    29: 64 bodies of 1 MiB held one byte short took the whole budget, after which every KV write
 *    streamed through the upload lane and waited there behind slow logins for 10 s, then got 503.
 *    A small body whose address has spent its share of the reserve draws on the large lane.
 *  - `large`: the rest, for bodies that declare more (or send no length: chunked).
 *
 * Caps, each so that one party cannot take what the others need:
 *  - per connection, both lanes together: one whole replayable body (REPLAY_CAP_BYTES), so
 *    pipelined requests cannot stack copies;
 *  - per client address (addressGroup of the address the gateway puts in X-Forwarded-For: the
 *    PROXY protocol source or a trusted proxy's claim, else the peer): a quarter of the small
 *    reserve and an eighth of the large lane, so at least four (eight) addresses are needed to
 *    fill a lane. Behind a load balancer that passes no client address every client shares the
 *    balancer's caps; the small reserve still keeps large slow bodies from small ones.
 */

/** Bodies up to this size stay replayable (KV writes are usually far smaller). */
export const REPLAY_CAP_BYTES = 1024 * 1024;
/**
 * A body that declares at most this many bytes is small: the nodes cap bodies read before
 * authentication (logins, sys/init) at 64 KiB, so every login fits, and so do typical KV writes
 * (0.3–4 KiB); it is also what one socket read hands over, so a small body sent at once arrives
 * in one chunk.
 */
export const SMALL_BODY_BYTES = 64 * 1024;
/**
 * All copies in the process together stay under this, so memory does not grow with
 * concurrency × body size (1,000 concurrent 256 KB writes otherwise held ~250 MB).
 */
export const REPLAY_BUDGET_BYTES = 64 * 1024 * 1024;
/**
 * Of the budget, what only small bodies may hold: a quarter, so large bodies keep 48 MiB (48
 * whole copies at the cap). 16 MiB is 256 small bodies at their largest, or ~50,000 typical KV
 * writes at once — far more than the leader's pool (128) ever has waiting.
 */
export const SMALL_RESERVE_BYTES = REPLAY_BUDGET_BYTES / 4;

/** Which part of the budget a body draws on (see the module comment). */
export type BodyLane = 'small' | 'large';

/** A budget's limits, in bytes. */
export interface ReplayBudgetLimits {
  /** All copies together. */
  total: number;
  /** Of `total`, what only small bodies may hold. */
  smallReserve: number;
  /** One client address's share of each lane. */
  perAddress: Record<BodyLane, number>;
  /** One connection's share, both lanes together. */
  perConnection: number;
}

/** The gateway's limits (see the module comment). */
export const DEFAULT_REPLAY_LIMITS: ReplayBudgetLimits = {
  total: REPLAY_BUDGET_BYTES,
  smallReserve: SMALL_RESERVE_BYTES,
  perAddress: { small: SMALL_RESERVE_BYTES / 4, large: (REPLAY_BUDGET_BYTES - SMALL_RESERVE_BYTES) / 8 },
  perConnection: REPLAY_CAP_BYTES,
};

type Usage = Record<BodyLane, number>;

/** Bytes held by replay copies, by lane, per client address and per connection. */
export class ReplayBudget {
  private readonly used: Usage = { small: 0, large: 0 };
  private readonly byAddress = new Map<string, Usage>();
  private readonly byConnection = new Map<object, number>();

  constructor(readonly limits: ReplayBudgetLimits = DEFAULT_REPLAY_LIMITS) {}

  /** Bytes currently held, in both lanes or in one. */
  held(lane?: BodyLane): number {
    return lane ? this.used[lane] : this.used.small + this.used.large;
  }

  /** Bytes `address` holds in `lane`. */
  heldBy(address: string, lane: BodyLane): number {
    return this.byAddress.get(address)?.[lane] ?? 0;
  }

  /** Bytes the bodies of `connection` hold. */
  heldOn(connection: object): number {
    return this.byConnection.get(connection) ?? 0;
  }

  /**
   * A claim for one body: a small body draws on the small lane, then on the large one; a large
   * body on the large lane only.
   */
  claim(lane: BodyLane, address: string, connection: object): ReplayClaim {
    return new ReplayClaim(this, lane, address, connection);
  }

  /** Takes `n` bytes in `lane` if no limit is passed; false (nothing taken) otherwise. */
  take(lane: BodyLane, address: string, connection: object, n: number): boolean {
    const l = this.limits;
    const room = lane === 'small' ? l.smallReserve : l.total - l.smallReserve;
    const mine = this.byAddress.get(address);
    const onConnection = this.byConnection.get(connection) ?? 0;
    if (
      this.used[lane] + n > room ||
      (mine?.[lane] ?? 0) + n > l.perAddress[lane] ||
      onConnection + n > l.perConnection
    )
      return false;
    this.used[lane] += n;
    if (mine) mine[lane] += n;
    else this.byAddress.set(address, lane === 'small' ? { small: n, large: 0 } : { small: 0, large: n });
    this.byConnection.set(connection, onConnection + n);
    return true;
  }

  /** Returns `n` bytes taken in `lane`; forgets an address or a connection that holds nothing. */
  give(lane: BodyLane, address: string, connection: object, n: number): void {
    if (n <= 0) return;
    this.used[lane] -= n;
    const mine = this.byAddress.get(address);
    if (mine) {
      mine[lane] -= n;
      if (mine.small <= 0 && mine.large <= 0) this.byAddress.delete(address);
    }
    const left = (this.byConnection.get(connection) ?? 0) - n;
    if (left > 0) this.byConnection.set(connection, left);
    else this.byConnection.delete(connection);
  }
}

/**
 * What one body holds of a budget. `release()` gives it all back and is idempotent; after it
 * the claim takes nothing more, so a stream still running for an abandoned attempt cannot take
 * bytes that nobody would return.
 */
export class ReplayClaim {
  private readonly holds: Usage = { small: 0, large: 0 };
  private released = false;

  constructor(
    private readonly budget: ReplayBudget,
    readonly lane: BodyLane,
    readonly address: string,
    private readonly connection: object,
  ) {}

  /** Bytes held. */
  get held(): number {
    return this.holds.small + this.holds.large;
  }

  /** Takes `n` more bytes; false (nothing taken) when no lane open to this body has room. */
  take(n: number): boolean {
    if (this.released) return false;
    const { budget, address, connection } = this;
    for (const lane of this.lane === 'small' ? SMALL_THEN_LARGE : LARGE_ONLY) {
      if (budget.take(lane, address, connection, n)) {
        this.holds[lane] += n;
        return true;
      }
    }
    return false;
  }

  /** Gives every byte back; takes nothing after. */
  release(): void {
    if (this.released) return;
    this.released = true;
    for (const lane of SMALL_THEN_LARGE) {
      this.budget.give(lane, this.address, this.connection, this.holds[lane]);
      this.holds[lane] = 0;
    }
  }
}

const SMALL_THEN_LARGE: readonly BodyLane[] = ['small', 'large'];
const LARGE_ONLY: readonly BodyLane[] = ['large'];

/** The process's budget (the gateway's). */
export const replayBudget = new ReplayBudget();
