/**
 * The state behind spread routing: gathers the candidates (the followed active and the members
 * of its signed membership record, with their pools' outstanding requests) and asks the pure
 * `pick` (./router.ts) which one takes a read. Remembers briefly the standbys a read could not
 * reach, so a standby that just died is not tried again before its heartbeat is found late.
 */
import type { Leader, LeaderWatcher } from '../shared/leader/leader-watcher';
import type { MembershipWatcher, Standby } from '../shared/leader/membership-watcher';
import { type Candidate, pick } from './router';

/**
 * A standby we could not reach (connection refused, TLS failure, reset) gets no read for this
 * long: about the time the active takes to find its heartbeat late and drop it from the record.
 */
const COOLDOWN_MS = 3_000;
/** Standbys remembered as cooling down, at most (a restarted standby comes back with a new id). */
const MAX_COOLING = 256;

/** One read's target: a standby, or the active (null: the hold loop sends it to the leader). */
export type ReadTarget = Standby | null;

export class ReadRouter {
  private turn = 0;
  /** Standbys (by id) not to send reads to until the time given. */
  private readonly cooling = new Map<string, number>();

  constructor(
    private readonly leaders: Pick<LeaderWatcher, 'current'>,
    private readonly members: Pick<MembershipWatcher, 'current'>,
    private readonly now: () => number = () => performance.now(),
  ) {}

  /** Where the next read goes: the least loaded fit standby, or null for the active. */
  choose(): ReadTarget {
    const active = this.leaders.current();
    if (!active?.client) return null;
    const standbys = this.members.current();
    if (standbys.length === 0) return null;
    const now = this.now();
    const candidates: Candidate<Leader>[] = [
      { target: active, standby: null, outstanding: outstanding(active), full: false },
    ];
    for (const s of standbys) {
      const until = this.cooling.get(s.member.id);
      if (until !== undefined && until <= now) this.cooling.delete(s.member.id);
      candidates.push({
        target: s,
        standby: {
          status: s.member.status,
          heartbeatAgeMs: s.member.heartbeat_age_ms + (now - s.listedAt),
          coolingDown: until !== undefined && until > now,
        },
        outstanding: outstanding(s),
        full: s.client.admission.queued > 0,
      });
    }
    const chosen = pick(candidates, this.turn++);
    return chosen?.standby ? (chosen.target as Standby) : null;
  }

  /** A read could not reach `s`: leave it alone for a while. */
  unreachable(s: Standby): void {
    // Ids are per standby process: forget those of processes long gone.
    if (this.cooling.size >= MAX_COOLING) this.cooling.clear();
    this.cooling.set(s.member.id, this.now() + COOLDOWN_MS);
  }
}

/** Requests in a target's pool, in flight or waiting for a place. */
function outstanding(l: Leader): number {
  const a = l.client?.admission;
  return a ? a.inUse + a.queued : 0;
}

/** Whether the hold loop's target is a standby (else the active). */
export function isStandby(l: Leader): l is Standby {
  return 'member' in l;
}
