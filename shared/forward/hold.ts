/**
 * The one hold-and-retry loop for requests forwarded to the leader, the gateway's and the
 * standbys' alike: find a leader (waiting for one, avoiding the one that failed, backing off),
 * send an attempt through its pool, ask the decision (policy.ts `next`) what follows, until the
 * request ends. The loop answers no client: it returns how the request ended and the adapter
 * (gateway/proxy.ts, node/ha/standby-policy.ts) answers in its own way (503 or 307).
 */
import type { ForwardAttempt } from '../leader/leader-client';
import type { ClientGone } from './client-gone';
import type { ForwardOutcome, ProxyOutcome } from './outcome';
import { type Decision, type Ending, type HeldRequest, type HoldProfile, next } from './policy';

type Retry = Extract<Decision, { kind: 'retry' }>;

/** What the loop needs of a leader (leader-watcher's Leader has it). */
export interface HeldLeader {
  readonly ad: { readonly uuid: string };
  readonly client: { forward(a: ForwardAttempt): Promise<ForwardOutcome> } | null;
}

/** What the loop needs of a leader watcher (LeaderWatcher has it). */
export interface LeaderSource<L extends HeldLeader> {
  /** The leader now, or null when none is known. */
  current(): L | null;
  /** Resolves with a leader whose uuid is not `notUuid` as soon as there is one, else null after `timeoutMs`. */
  waitFor(timeoutMs: number, notUuid?: string, signal?: AbortSignal): Promise<L | null>;
}

/** One client request being held. */
export interface HoldRequest {
  readonly method: string;
  /** Its body (null: none); asked after a failed attempt whether it can be sent again. */
  readonly body: { replayable(): boolean } | null;
  readonly gone: ClientGone;
  /** When it arrived (the loop's clock): the hold counts from here. */
  readonly startedAt: number;
}

/** The path-specific parts of the loop: how an attempt is built, and what is counted or traced. */
export interface HoldAdapter<L extends HeldLeader, R extends HoldRequest> {
  /** Attempt `n` (from 1) of `r` to `leader`, waiting at most `admissionWaitMs` for a place. */
  attempt(r: R, leader: L, n: number, admissionWaitMs: number): ForwardAttempt;
  /** After each attempt that went through a pool (neither busy nor aborted). */
  attempted?(r: R, outcome: ProxyOutcome, leader: L): void;
  /** The decision is to retry after `outcome`; called before the next leader is looked for. */
  retrying?(r: R, outcome: ForwardOutcome): void;
  /** A retry after `previous` is about to go to `leader` (found, and the client is still there). */
  resending?(r: R, previous: ForwardOutcome, leader: L): void;
  /** Wraps a wait for a leader (none known, or only the one to avoid), e.g. in a span. */
  waiting?(r: R, avoiding: boolean, wait: () => Promise<L | null>): Promise<L | null>;
}

/** How a held request ended, and the last outcome and leader (for the adapter's answer). */
export interface HoldEnd<L> {
  readonly kind: Ending;
  readonly outcome: ForwardOutcome | null;
  readonly leader: L | null;
}

const NO_CHANNEL: ForwardOutcome = { kind: 'not-sent', error: 'no cluster channel to the active' };

/** The loop for one profile; one per gateway or standby, `run` per request. */
export class HoldLoop<L extends HeldLeader, R extends HoldRequest> {
  constructor(
    private readonly profile: HoldProfile,
    private readonly leaders: LeaderSource<L>,
    private readonly adapter: HoldAdapter<L, R>,
    /** The clock (performance.now() by default; a test's own). */
    private readonly now: () => number = () => performance.now(),
  ) {}

  /**
   * Forwards `r` until it ends: to `first`, or (null) the leader known now or the first to
   * appear within the hold. Never throws unless an adapter hook does.
   */
  async run(r: R, first: L | null): Promise<HoldEnd<L>> {
    const p = this.profile;
    const deadline = r.startedAt + p.holdMs;
    // What the decision reads, updated in place after each attempt (one allocation per request).
    const view: { method: string; body: HeldRequest['body']; gone: boolean } = {
      method: r.method,
      body: 'none',
      gone: false,
    };
    const state = { leader: '', deadline, backoffMs: p.backoff.firstMs, holding: p.holdFrom === 'start' };
    let leader = first;
    let tried: L | null = null;
    let last: ForwardOutcome | null = null;
    let retry: Retry | null = null;
    for (let n = 1; n <= p.maxAttempts && !r.gone.aborted; n++) {
      if (!leader) leader = await this.find(r, retry, deadline, tried);
      if (r.gone.aborted) return end('done', last, leader ?? tried);
      if (!leader) return end('give-up', last, tried);
      if (last) this.adapter.resending?.(r, last, leader);
      let outcome: ForwardOutcome;
      if (leader.client) {
        const wait =
          p.admissionWaitMs === 'rest-of-hold' ? Math.max(0, deadline - this.now()) : p.admissionWaitMs;
        outcome = await leader.client.forward(this.adapter.attempt(r, leader, n, wait));
        if (outcome.kind !== 'busy' && outcome.kind !== 'aborted')
          this.adapter.attempted?.(r, outcome, leader);
      } else if (p.noChannel === 'not-sent') {
        outcome = NO_CHANNEL;
      } else {
        return end('give-up', last, leader);
      }
      last = outcome;
      tried = leader;
      view.gone = r.gone.aborted;
      view.body = r.body === null ? 'none' : r.body.replayable() ? 'replayable' : 'spent';
      state.leader = leader.ad.uuid;
      const d = next(outcome, view, state, this.now(), p);
      if (d.kind !== 'retry') return end(d.kind, outcome, leader);
      this.adapter.retrying?.(r, outcome);
      state.backoffMs = d.backoffMs;
      state.holding = d.holding;
      retry = d;
      leader = null;
    }
    return end(r.gone.aborted ? 'done' : 'give-up', last, tried);
  }

  /**
   * The leader for the next attempt: the one known now unless it is the one to avoid; else, per
   * `retry.otherwise`, wait up to its backoff for another, then take whoever is known, then wait
   * for any until the deadline (`wait`) or try the one that failed again (`same`: it may have
   * recovered, and a dead leader's lock expires in one TTL), or none (`give-up`). The first
   * attempt (no retry) takes the leader known now, else waits for one until the deadline.
   */
  private async find(r: R, retry: Retry | null, deadline: number, failed: L | null): Promise<L | null> {
    const { leaders } = this;
    let leader = leaders.current();
    const avoid = retry?.avoid;
    if (leader && leader.ad.uuid !== avoid) return leader;
    const otherwise = retry?.otherwise ?? 'wait';
    if (otherwise === 'give-up') return null;
    const remaining = () => Math.max(0, deadline - this.now());
    const wait = async (): Promise<L | null> => {
      if (retry && (leader || otherwise === 'same')) {
        leader =
          (await leaders.waitFor(Math.min(retry.waitMs, remaining()), avoid, r.gone.signal)) ??
          leaders.current();
      }
      if (leader || r.gone.aborted) return leader;
      if (otherwise === 'same') return failed;
      return leaders.waitFor(remaining(), undefined, r.gone.signal);
    };
    return this.adapter.waiting ? this.adapter.waiting(r, avoid !== undefined, wait) : wait();
  }
}

function end<L>(kind: Ending, outcome: ForwardOutcome | null, leader: L | null): HoldEnd<L> {
  return { kind, outcome, leader };
}
