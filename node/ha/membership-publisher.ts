/**
 * The active side of spread routing: writes the term's membership record
 * (`core/members-signed/<uuid>`, shared/membership.ts) — the standbys that announced a listener
 * for gateways, are serving and were heard from lately — signed and encrypted like the
 * advertisement, through the term's fenced storage (only while we hold the lock).
 *
 * It looks at the peer table every echo interval and writes when the members changed, and every
 * time while there are members at all: a gateway ages a member by how long the record it read has
 * stood unchanged, so the record must be rewritten for a healthy member to stay fresh. An empty,
 * unchanged record is not rewritten.
 */
import type { Logger } from 'pino';
import type { SigningKey } from '../../shared/crypto/signing';
import { encodeMembership, type Member, membershipPath } from '../../shared/membership';
import type { Backend } from '../../shared/storage/backend';
import { ECHO_INTERVAL_MS, type PeerTable } from './peers';

export interface MembershipPublisherOptions {
  /** The term's storage (fenced with its lock value where the store allows). */
  data: Backend;
  /** The term's lock value and epoch. */
  uuid: string;
  epoch: number;
  peers: PeerTable;
  advertisementKeys: readonly Buffer[];
  signingKey: SigningKey;
  log: Logger;
}

/** What identifies a member set, without the ages that change at every write. */
function shape(members: readonly Member[]): string {
  return JSON.stringify(members.map((m) => [m.node_id, m.id, m.addr, m.cert, m.status]));
}

/** Writes one term's membership record. `start()` / `stop()` are idempotent. */
export class MembershipPublisher {
  private timer: NodeJS.Timeout | undefined;
  private seq = 0;
  /** The shape last written (null: nothing written yet). */
  private written: string | null = null;
  private writing: Promise<void> | undefined;
  private stopped = false;

  constructor(private readonly o: MembershipPublisherOptions) {}

  /** The record's path. */
  get path(): string {
    return membershipPath(this.o.uuid);
  }

  start(): void {
    if (this.timer || this.stopped) return;
    this.timer = setInterval(() => this.tick(), ECHO_INTERVAL_MS);
    this.timer.unref();
    this.tick();
  }

  /** Stops writing and waits for a write in progress. */
  async stop(): Promise<void> {
    this.stopped = true;
    clearInterval(this.timer);
    await this.writing;
  }

  private tick(): void {
    if (this.stopped || this.writing) return;
    const members = this.o.peers.members(Date.now());
    const now = shape(members);
    if (members.length === 0 && now === this.written) return;
    this.writing = this.write(members, now).finally(() => {
      this.writing = undefined;
    });
  }

  private async write(members: Member[], now: string): Promise<void> {
    const { o } = this;
    const record = { uuid: o.uuid, epoch: o.epoch, seq: ++this.seq, members };
    try {
      await o.data.put(this.path, encodeMembership(record, o.advertisementKeys, o.signingKey));
      if (now !== this.written) o.log.info({ members: members.map((m) => m.node_id) }, 'membership written');
      this.written = now;
    } catch (err) {
      // Fenced (the lock is gone) or storage down: the next tick tries again; gateways meanwhile
      // see the record age and stop sending reads to its members.
      o.log.warn({ err: (err as Error).message }, 'membership write failed');
    }
  }
}
