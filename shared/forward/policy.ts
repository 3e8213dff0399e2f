/**
 * What happens to a forwarded request after an attempt, decided in one place for the gateway
 * and for standbys: `next()` is a pure function of the attempt's outcome, the request, the
 * attempt and the time — no I/O, no clock of its own — so every rule is tested in milliseconds
 * (test/unit/forward-policy.test.ts). The hold loop (hold.ts) carries it out; a profile says how
 * one path differs from the other.
 */
import type { IncomingHttpHeaders } from 'node:http';
import { LwError, MESSAGES } from '../errors';
import type { ForwardOutcome } from './outcome';

/**
 * Retrying a request the leader did not serve: wait this long (doubling up to the cap) for a new
 * leader before trying the same one again. A Redis failover keeps the leader, so the cap is how
 * late a held request may notice that storage is back.
 */
export const RETRY_BACKOFF_MS = 50;
export const RETRY_BACKOFF_MAX_MS = 250;

/** Methods whose repetition changes nothing (Vault's LIST included). */
export const IDEMPOTENT: ReadonlySet<string> = new Set(['GET', 'HEAD', 'OPTIONS', 'LIST']);

/** Whether a request carries a body (which a retry must send again). */
export function hasBody(headers: IncomingHttpHeaders): boolean {
  const len = headers['content-length'];
  return headers['transfer-encoding'] !== undefined || (len !== undefined && len !== '0');
}

/** Outcomes a held request may be retried after (`maybe-sent` only for an idempotent method). */
export type RetryableKind = 'not-served' | 'not-sent' | 'redirect' | 'maybe-sent';

/** How one forwarding path holds and retries (gatewayProfile, standbyProfile). */
export interface HoldProfile {
  /** How long a request may be held, counted from its arrival (LEADERWAY_FAILOVER_WAIT). */
  readonly holdMs: number;
  /** How long an attempt may wait for a place in the leader's pool: fixed, or what is left of the hold. */
  readonly admissionWaitMs: number | 'rest-of-hold';
  /**
   * The wait for another leader before the first held retry (else the same one is tried again),
   * doubled after each held retry up to `maxMs`.
   */
  readonly backoff: { readonly firstMs: number; readonly maxMs: number };
  /** Attempts per request, whatever the outcomes (Infinity: bounded by `holdMs` alone). */
  readonly maxAttempts: number;
  /**
   * When a request is held: from the `start` (the gateway: a failover is a pause), or only once
   * the leader answered `not-served` (a standby: the active lives, so what follows is a pause).
   * Before that, only a `not-sent` attempt is retried, and only on a newer leader already known.
   */
  readonly holdFrom: 'start' | 'not-served';
  /** What a held request is retried after. */
  readonly retried: ReadonlySet<RetryableKind>;
  /**
   * Where a held retry goes when no other leader showed up within the backoff and none is known
   * now: wait for any leader until the hold ends (`wait`), or the same one again (`same`).
   */
  readonly otherwise: 'wait' | 'same';
  /**
   * Whether a body is kept to be sent again. Kept (the gateway): a body too large for its copy
   * ends a retry as `resend`. Not kept (a standby streams it through): a request with a body gets
   * exactly one attempt, and a failure ends as `give-up`.
   */
  readonly replay: boolean;
  /** A leader without a cluster channel: `give-up`, or an attempt that was `not-sent`. */
  readonly noChannel: 'give-up' | 'not-sent';
}

/**
 * Gateway attempts per request, whatever the outcomes; keeps a pathological cluster from
 * looping. Enough to retry at the backoff cap for the whole default failover wait (10 s).
 */
export const GATEWAY_MAX_ATTEMPTS = 64;

/** How long a standby's forwarded request may wait for a place in the pool before it is redirected. */
export const STANDBY_ADMISSION_WAIT_MS = 5_000;

/**
 * The gateway's hold: a failover is a pause, so a request is held from the start — waiting for a
 * leader when none is known, retried after anything that did not serve it (a maybe-sent one
 * only when idempotent; a 307 points back at the gateway, so it is never passed on) — until
 * `holdMs` (LEADERWAY_FAILOVER_WAIT) has passed since it arrived. Bodies are kept to be sent
 * again. The first held retry waits 2 × RETRY_BACKOFF_MS for another leader: the gateway has
 * always doubled its backoff before the first use.
 */
export function gatewayProfile(holdMs: number): HoldProfile {
  return {
    holdMs,
    admissionWaitMs: 'rest-of-hold',
    backoff: { firstMs: Math.min(RETRY_BACKOFF_MAX_MS, RETRY_BACKOFF_MS * 2), maxMs: RETRY_BACKOFF_MAX_MS },
    maxAttempts: GATEWAY_MAX_ATTEMPTS,
    holdFrom: 'start',
    retried: new Set(['not-served', 'not-sent', 'redirect', 'maybe-sent']),
    otherwise: 'wait',
    replay: true,
    noChannel: 'give-up',
  };
}

/**
 * A standby's hold: the active lives, so a request is held only once it answered "not served"
 * (stepping down, draining, its Redis failing over), then retried after not-served or not-sent
 * until `holdMs`, on a new leader else the same one (with the store unreachable the watcher may
 * stop vouching for the active, but the active says "not served" itself while it is not active).
 * Before that, one that never reached the active is retried only on a newer leader. A body is
 * streamed, not kept: a request with one gets exactly one attempt. No attempt cap: the hold and
 * the backoff bound it.
 */
export function standbyProfile(holdMs: number): HoldProfile {
  return {
    holdMs,
    admissionWaitMs: STANDBY_ADMISSION_WAIT_MS,
    backoff: { firstMs: RETRY_BACKOFF_MS, maxMs: RETRY_BACKOFF_MAX_MS },
    maxAttempts: Number.POSITIVE_INFINITY,
    holdFrom: 'not-served',
    retried: new Set(['not-served', 'not-sent']),
    otherwise: 'same',
    replay: false,
    noChannel: 'not-sent',
  };
}

/** The request, as the decision sees it after an attempt. */
export interface HeldRequest {
  readonly method: string;
  /** No body; one that can be sent again; or one that cannot (part of it is gone). */
  readonly body: 'none' | 'replayable' | 'spent';
  /** The client went away. */
  readonly gone: boolean;
}

/** Where a request stands after an attempt (the hold loop's state). */
export interface AttemptState {
  /** The uuid of the leader the attempt went to. */
  readonly leader: string;
  /** When the hold ends (the same clock as `now`). */
  readonly deadline: number;
  /** The next held retry's wait for another leader. */
  readonly backoffMs: number;
  /** Whether the request is held (see HoldProfile.holdFrom). */
  readonly holding: boolean;
}

/** How a request ends when it is not retried: what the client is told. */
export type Ending =
  /** Answered (any status), broken mid-answer, or the client went away: nothing more to do. */
  | 'done'
  /** No place in the leader's pool within the admission wait. */
  | 'busy'
  /** It may have run on a leader that failed: 503 "outcome unknown". */
  | 'unknown'
  /** Its body cannot be sent again: the client must send it again. */
  | 'resend'
  /** It could be retried but may not be (hold over, no leader, body not kept): 503 or 307. */
  | 'give-up';

/** What to do after an attempt. */
export type Decision =
  | { readonly kind: Ending }
  | {
      readonly kind: 'retry';
      /** The leader to avoid: the one that just failed. */
      readonly avoid: string;
      /** How long to wait for another leader when the current one is `avoid`. */
      readonly waitMs: number;
      /** When none other shows up: wait for any until the deadline, the same one, or give up. */
      readonly otherwise: 'wait' | 'same' | 'give-up';
      /** The state after this retry. */
      readonly backoffMs: number;
      readonly holding: boolean;
    };

const END: { readonly [E in Ending]: Decision } = {
  done: { kind: 'done' },
  busy: { kind: 'busy' },
  unknown: { kind: 'unknown' },
  resend: { kind: 'resend' },
  'give-up': { kind: 'give-up' },
};

/**
 * What to do after an attempt, in this order: busy ends as `busy`; served, broken or aborted
 * (or a client gone) is `done`; a non-idempotent request that may have run is `unknown`; a body
 * that cannot be sent again ends it (`resend`, or `give-up` where bodies are not kept); at the
 * deadline it is `give-up`; a held request is retried after what the profile retries (waiting
 * for another leader, backing off); before holding, only a `not-sent` one, on a newer leader.
 */
export function next(
  outcome: ForwardOutcome,
  request: HeldRequest,
  attempt: AttemptState,
  now: number,
  profile: HoldProfile,
): Decision {
  const kind = outcome.kind;
  if (kind === 'busy') return END.busy;
  if (kind === 'served' || kind === 'broken' || kind === 'aborted' || request.gone) return END.done;
  if (kind === 'maybe-sent' && !IDEMPOTENT.has(request.method)) return END.unknown;
  if (request.body !== 'none' && (!profile.replay || request.body === 'spent')) {
    return profile.replay ? END.resend : END['give-up'];
  }
  if (now >= attempt.deadline) return END['give-up'];
  const holding = attempt.holding || (profile.holdFrom === 'not-served' && kind === 'not-served');
  if (holding && profile.retried.has(kind)) {
    return {
      kind: 'retry',
      avoid: attempt.leader,
      waitMs: attempt.backoffMs,
      otherwise: profile.otherwise,
      backoffMs: Math.min(profile.backoff.maxMs, attempt.backoffMs * 2),
      holding,
    };
  }
  if (kind === 'not-sent') {
    // Never reachable (a dead leader, a wrong cluster address): only a newer leader may do better.
    return {
      kind: 'retry',
      avoid: attempt.leader,
      waitMs: 0,
      otherwise: 'give-up',
      backoffMs: attempt.backoffMs,
      holding,
    };
  }
  return END['give-up'];
}

/** The answer for a request that may have run on a leader that then failed. */
export function outcomeUnknownError(): LwError {
  return new LwError(
    'LW_ERR_OUTCOME_UNKNOWN',
    'the leader failed while handling this request; its outcome is unknown: check before retrying',
    { retryAfter: 1 },
  );
}

/** The answer for a request whose body went (in part) to a leader and was too large to keep. */
export function resendError(): LwError {
  const message = 'the leader changed while the request body was being sent; send it again';
  return new LwError('LW_ERR_NO_LEADER', message, { retryAfter: 1 });
}

/** The answer when no leader could be reached within the hold (Vault's message). */
export function noLeaderError(): LwError {
  return new LwError('LW_ERR_NO_LEADER', MESSAGES.noActiveNode, { retryAfter: 1 });
}
