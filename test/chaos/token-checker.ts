/**
 * The token checker: no token is accepted after its revocation, or an ancestor's, was
 * acknowledged, and none after it expired — across failovers. Checked from the client's view:
 *  - a `use` that began after an acknowledged `revoke` of the token or any ancestor ended, and
 *    was accepted, is a violation;
 *  - a token's expiry is bounded by its create and renewals: each acknowledged one sets it to at
 *    most `end + lease`, an indeterminate renewal to at most `end + increment asked for`; a use
 *    that began after the latest such bound (of the token or any ancestor) and was accepted is a
 *    violation. A second of slack covers lease seconds rounded in responses.
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
  const stats: TokenStats = {
    tokens: created.size,
    uses: 0,
    accepted: 0,
    refused: 0,
    revocations: ops.filter((o) => o.kind === 'revoke' && o.outcome === 'ok').length,
    acceptedAfterRenewal: 0,
  };
  for (const u of ops) {
    if (u.kind !== 'use') continue;
    stats.uses++;
    if (u.outcome === 'fail') stats.refused++;
    if (u.outcome !== 'ok') continue;
    stats.accepted++;
    for (const a of ancestry(u.token)) {
      const revoked = revokedAt(a);
      if (u.start > revoked) {
        const whose = a === u.token ? 'its' : `its ancestor ${a}'s`;
        v.push(
          `token ${u.token}: use op ${u.id} accepted ${u.start - revoked} ms after ${whose} revocation was acknowledged`,
        );
      }
      const bound = expiryBound(a, u.end);
      if (Number.isFinite(bound) && u.start > bound) {
        const whose = a === u.token ? 'it' : `its ancestor ${a}`;
        v.push(`token ${u.token}: use op ${u.id} accepted ${u.start - bound} ms after ${whose} expired`);
      }
    }
    if ((byToken.get(u.token) ?? []).some((o) => o.kind === 'renew' && o.outcome === 'ok' && o.end < u.start))
      stats.acceptedAfterRenewal++;
  }
  return { violations: v, stats };
}
