/**
 * The token checker: no token is accepted after its revocation, or an ancestor's, was
 * acknowledged, and none after it expired — across failovers. Checked from the client's view:
 *  - a `use` that began after an acknowledged `revoke` of the token or any ancestor ended, and
 *    was accepted, is a violation;
 *  - a token's expiry is bounded by its create and renewals: each acknowledged one sets it to at
 *    most `end + lease`, an indeterminate renewal to at most `end + increment asked for`; a use
 *    that began after the latest such bound (of the token or any ancestor) and was accepted is a
 *    violation. A second of slack covers lease seconds rounded in responses;
 *  - the other way round (read-your-writes for tokens, across nodes): a use refused 403 that
 *    began after the token's creation was acknowledged and ended before any revocation of it or
 *    an ancestor was even sent, and before the earliest expiry any create or renewal can have set,
 *    is a violation — a node (a standby reading tokens from storage) answered as if the create
 *    had not happened. Only acknowledged renewals count as known; after an indeterminate one the
 *    token is not checked this way (its expiry is unknown).
 * Uses are sent through both gateways and to every node directly, standbys included (and, after
 * each acknowledged create and revoke, to all of them at once); a violation names the target.
 */
import type { TokenOp } from './history';

export type { TokenOp };

/** Slack on expiry bounds: lease seconds are rounded in responses. */
const EXPIRY_SLACK_MS = 1_000;

export interface TokenStats {
  tokens: number;
  uses: number;
  accepted: number;
  refused: number;
  revocations: number;
  acceptedAfterRenewal: number;
  /** Uses answered by a node directly (a `standby:` or `active:` target), and of those by a standby. */
  direct: number;
  directStandby: number;
  /** Uses that began after an acknowledged revocation of the token or an ancestor (all must be refused). */
  afterRevocation: number;
  /** Uses of a token that was certainly live throughout (none may be refused 403). */
  mustAccept: number;
}

export function checkTokens(ops: TokenOp[]): { violations: string[]; stats: TokenStats } {
  const v: string[] = [];
  const byToken = new Map<string, TokenOp[]>();
  for (const op of ops) byToken.set(op.token, [...(byToken.get(op.token) ?? []), op]);
  const created = new Map<string, TokenOp>();
  for (const op of ops) if (op.kind === 'create' && op.outcome === 'ok') created.set(op.token, op);
  const ancestry = (label: string): string[] => {
    const chain: string[] = [];
    for (let at: string | undefined = label; at && !chain.includes(at); at = created.get(at)?.parent)
      chain.push(at);
    return chain;
  };
  const revokedAt = (label: string) =>
    Math.min(
      ...(byToken.get(label) ?? [])
        .filter((o) => o.kind === 'revoke' && o.outcome === 'ok')
        .map((o) => o.end),
    );
  /** The latest expiry any create or renewal that began before `t` can have set. */
  const expiryBound = (label: string, t: number) =>
    Math.max(
      ...(byToken.get(label) ?? [])
        .filter(
          (o) =>
            o.start <= t &&
            o.leaseS !== undefined &&
            ((o.kind === 'create' && o.outcome === 'ok') || (o.kind === 'renew' && o.outcome !== 'fail')),
        )
        .map((o) => o.end + (o.leaseS as number) * 1000 + EXPIRY_SLACK_MS),
    );
  /**
   * Why the token of use `u` was certainly live throughout it (so a 403 is a violation), or
   * undefined when it may legitimately be dead: its creation not acknowledged before the use
   * began, a revocation of it or an ancestor sent before the use ended, an expiry that may have
   * passed or is unknown.
   */
  const provablyLive = (u: TokenOp): string | undefined => {
    const chain = ancestry(u.token);
    const mine = created.get(u.token);
    if (!mine || mine.end >= u.start) return undefined;
    // The chain must reach a token root created (labels of tokens whose create is unknown stop it).
    const top = chain[chain.length - 1] as string;
    if (!created.has(top) || created.get(top)?.parent !== undefined) return undefined;
    let earliestExpiry = Number.POSITIVE_INFINITY;
    for (const a of chain) {
      const mineOps = byToken.get(a) ?? [];
      if (mineOps.some((o) => o.kind === 'revoke' && o.outcome !== 'fail' && o.start <= u.end))
        return undefined;
      const c = created.get(a) as TokenOp;
      if (c.leaseS === undefined) return undefined;
      let e = c.start + c.leaseS * 1000;
      for (const r of mineOps) {
        if (r.kind !== 'renew' || r.outcome === 'fail' || r.start > u.end) continue;
        if (r.outcome !== 'ok' || r.leaseS === undefined) return undefined;
        e = Math.min(e, r.start + r.leaseS * 1000);
      }
      earliestExpiry = Math.min(earliestExpiry, e);
    }
    if (u.end >= earliestExpiry - EXPIRY_SLACK_MS) return undefined;
    return `${u.start - mine.end} ms after its creation was acknowledged (op ${mine.id} via ${mine.via}), with no revocation sent and ${earliestExpiry - u.end} ms before it could expire`;
  };
  const stats: TokenStats = {
    tokens: created.size,
    uses: 0,
    accepted: 0,
    refused: 0,
    revocations: ops.filter((o) => o.kind === 'revoke' && o.outcome === 'ok').length,
    acceptedAfterRenewal: 0,
    direct: 0,
    directStandby: 0,
    afterRevocation: 0,
    mustAccept: 0,
  };
  for (const u of ops) {
    if (u.kind !== 'use') continue;
    stats.uses++;
    if (u.via.startsWith('standby:') || u.via.startsWith('active:')) stats.direct++;
    if (u.via.startsWith('standby:')) stats.directStandby++;
    if (ancestry(u.token).some((a) => u.start > revokedAt(a))) stats.afterRevocation++;
    if (u.outcome === 'fail') stats.refused++;
    const live = provablyLive(u);
    if (live !== undefined) {
      stats.mustAccept++;
      if (u.outcome === 'fail' && u.status === 403)
        v.push(`token ${u.token}: use op ${u.id} (via ${u.via}) refused 403 ${live}`);
    }
    if (u.outcome !== 'ok') continue;
    stats.accepted++;
    for (const a of ancestry(u.token)) {
      const revoked = revokedAt(a);
      if (u.start > revoked) {
        const whose = a === u.token ? 'its' : `its ancestor ${a}'s`;
        v.push(
          `token ${u.token}: use op ${u.id} (via ${u.via}) accepted ${u.start - revoked} ms after ${whose} revocation was acknowledged`,
        );
      }
      const bound = expiryBound(a, u.end);
      if (Number.isFinite(bound) && u.start > bound) {
        const whose = a === u.token ? 'it' : `its ancestor ${a}`;
        v.push(
          `token ${u.token}: use op ${u.id} (via ${u.via}) accepted ${u.start - bound} ms after ${whose} expired`,
        );
      }
    }
    if ((byToken.get(u.token) ?? []).some((o) => o.kind === 'renew' && o.outcome === 'ok' && o.end < u.start))
      stats.acceptedAfterRenewal++;
  }
  return { violations: v, stats };
}
