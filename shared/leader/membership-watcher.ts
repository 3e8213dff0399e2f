/**
 * Knows which standbys serve reads, for a gateway spreading them (LEADERWAY_GATEWAY_READ_ROUTING
 * =spread), and fails closed like the LeaderWatcher beside it.
 *
 * It reads the membership record of the leader the LeaderWatcher follows,
 * `core/members-signed/<leader uuid>` (../membership.ts), whenever the leader changes and every
 * `pollMs`. A record is used only if it authenticates under the advertisement key, is signed by a
 * node's signing key, names the followed leader's uuid and epoch, and its `seq` is not older than
 * one already used for that leader. Anything else — no leader, no record, a record that does not
 * verify (counted through `onReject`), a store we cannot read for too long — means "no standbys":
 * every read goes to the active, as with `active` routing.
 *
 * A member's heartbeat age is what the record says plus how long ago this gateway first saw that
 * record (its own clock, no clock shared with the nodes): an active that stops rewriting the
 * record makes its members age until the router finds them late.
 *
 * Each member gets a connection pool (a LeaderClient: mutual TLS trusting only the member's
 * certificate, presenting this gateway's identity), kept while the member stays the same (id,
 * address, certificate) and retired when it leaves.
 */
import type { Advertisement, RejectReason } from '../advertisement';
import type { VerifyKey } from '../crypto/signing';
import { decodeMembership, type Member, type Membership, membershipPath } from '../membership';
import { rejectReasons } from '../signed-record';
import type { Backend } from '../storage/backend';
import { CoalescedRead } from './coalesced';
import { type ClientIdentity, LeaderClient } from './leader-client';
import type { Leader, LeaderWatcher } from './leader-watcher';

/** How often the record is read (the active rewrites it every second). */
const DEFAULT_POLL_MS = 1_000;
/** Without a successful read for this many poll periods, every member is dropped. */
const STALE_AFTER_POLLS = 3;

/** A standby a read may be sent to: its record entry and a pool to it. */
export interface Standby extends Leader {
  readonly member: Member;
  readonly client: LeaderClient;
  /** When this gateway first saw the record that lists it as it is now (performance.now()). */
  readonly listedAt: number;
}

/** Why a record was not used (a metric label; never contains the data). */
export type MembershipRejection = RejectReason | 'leader-mismatch' | 'stale-seq' | 'bad-cert';

/** Every reason, for a gateway to export each at 0 before any refusal. */
export const MEMBERSHIP_REJECTIONS = rejectReasons<Exclude<MembershipRejection, RejectReason>>({
  'leader-mismatch': true,
  'stale-seq': true,
  'bad-cert': true,
});

export interface MembershipWatcherOptions {
  data: Backend;
  /** The leader followed (its 'change' events prompt a read). */
  leaders: Pick<LeaderWatcher, 'current' | 'on' | 'off'>;
  keys: readonly Buffer[];
  verifyKeys: readonly VerifyKey[];
  /** What this gateway presents to a standby (its own certificate). */
  identity: () => Promise<ClientIdentity>;
  /** Connections per standby pool. */
  connections?: number;
  pollMs?: number;
  hooks?: {
    onReject?(reason: MembershipRejection): void;
    onReadError?(err: unknown): void;
    /** The members changed (their number). */
    onChange?(count: number): void;
  };
}

/** The pool key: a member is the same one while its id, address and certificate are. */
function keyOf(m: Member): string {
  return `${m.id} ${m.addr} ${m.cert}`;
}

/** Follows the current leader's membership record. `start()` / `close()` are idempotent. */
export class MembershipWatcher {
  private standbys: Standby[] = [];
  private readonly pools = new Map<string, LeaderClient>();
  /** The record in use: its leader, seq, and when this gateway first saw that seq. */
  private seen: { uuid: string; seq: number; at: number } | null = null;
  /** The highest seq used for a leader: an older record (a replay) is refused even after a gap. */
  private newest: { uuid: string; seq: number } | null = null;
  private lastGoodRead = 0;
  private timer: NodeJS.Timeout | undefined;
  private readonly reads = new CoalescedRead(() => this.read());
  private closed = false;
  private readonly pollMs: number;
  private readonly onLeader = () => void this.refresh();

  constructor(private readonly o: MembershipWatcherOptions) {
    this.pollMs = o.pollMs ?? DEFAULT_POLL_MS;
  }

  async start(): Promise<void> {
    if (this.timer || this.closed) return;
    this.o.leaders.on('change', this.onLeader);
    this.timer = setInterval(() => void this.refresh(), this.pollMs);
    this.timer.unref();
    await this.refresh();
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    clearInterval(this.timer);
    this.o.leaders.off('change', this.onLeader);
    await this.reads.running();
    this.use([], null);
  }

  /** The standbys of the current leader's record, if it was read recently; else none. */
  current(): readonly Standby[] {
    if (this.standbys.length === 0) return this.standbys;
    // We cannot confirm the record any more (store unreachable), or it is another leader's (the
    // leader changed and the new one's record is not read yet): send nothing to standbys.
    const unconfirmed = performance.now() - this.lastGoodRead > this.pollMs * STALE_AFTER_POLLS;
    if (unconfirmed || this.o.leaders.current()?.ad.uuid !== this.seen?.uuid) this.use([], null);
    return this.standbys;
  }

  /** Re-reads the record now (coalesced with a read already running). */
  refresh(): Promise<void> {
    if (this.closed) return Promise.resolve();
    return this.reads.run();
  }

  /** Builds new pools (this gateway's identity changed); the old ones finish and close. */
  async reconnect(): Promise<void> {
    for (const p of this.pools.values()) p.retire();
    this.pools.clear();
    this.use([], null);
    await this.refresh();
  }

  private async read(): Promise<void> {
    const { hooks } = this.o;
    const leader = this.o.leaders.current();
    if (!leader) {
      this.use([], null);
      return;
    }
    const path = membershipPath(leader.ad.uuid);
    let raw: Buffer | null;
    try {
      raw = await this.o.data.get(path);
    } catch (err) {
      hooks?.onReadError?.(err);
      return;
    }
    this.lastGoodRead = performance.now();
    if (!raw) {
      this.use([], null);
      return;
    }
    const d = decodeMembership(raw, path, this.o.keys, this.o.verifyKeys);
    if (!d.ok) return this.reject(d.reason);
    const reason = this.mismatch(d.record, leader.ad);
    if (reason) return this.reject(reason);
    await this.accept(d.record);
  }

  /** Why a verified record is not the followed leader's current one, if it is not. */
  private mismatch(r: Membership, ad: Advertisement): MembershipRejection | null {
    // The leader may have changed while we read: compare with the one followed now.
    const now = this.o.leaders.current()?.ad;
    if (r.uuid !== ad.uuid || r.epoch !== ad.epoch || now?.uuid !== ad.uuid) return 'leader-mismatch';
    if (this.newest?.uuid === r.uuid && r.seq < this.newest.seq) return 'stale-seq';
    return null;
  }

  private reject(reason: MembershipRejection): void {
    this.o.hooks?.onReject?.(reason);
    this.use([], null);
  }

  private async accept(r: Membership): Promise<void> {
    if (this.seen?.uuid === r.uuid && this.seen.seq === r.seq) return;
    this.newest = { uuid: r.uuid, seq: r.seq };
    const identity = await this.o.identity();
    const at = performance.now();
    const next: Standby[] = [];
    for (const member of r.members) {
      const key = keyOf(member);
      let client = this.pools.get(key);
      if (!client) {
        // The pool trusts the member's certificate alone, for its name `fw-<id>`.
        const ad: Advertisement = {
          uuid: member.id,
          epoch: r.epoch,
          node_id: member.node_id,
          api_addr: '',
          cluster_addr: member.addr,
          cert: member.cert,
          active_time: '',
        };
        try {
          client = new LeaderClient(ad, identity, { connections: this.o.connections });
        } catch {
          this.o.hooks?.onReject?.('bad-cert');
          continue;
        }
        this.pools.set(key, client);
      }
      next.push({ ad: client.ad, client, member, listedAt: at });
    }
    this.use(next, { uuid: r.uuid, seq: r.seq, at });
  }

  /** Switches to `next`, retiring the pools of members that left. */
  private use(next: Standby[], seen: MembershipWatcher['seen']): void {
    const before = this.standbys.length;
    this.standbys = next;
    this.seen = seen;
    const kept = new Set(next.map((s) => keyOf(s.member)));
    for (const [key, pool] of this.pools) {
      if (kept.has(key)) continue;
      this.pools.delete(key);
      pool.retire();
    }
    if (before !== next.length || next.length > 0) this.o.hooks?.onChange?.(next.length);
  }
}
