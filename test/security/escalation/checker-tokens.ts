/**
 * The checker's token rules: what a create may hand out (rules 1, 2, 4, 5, 6 and leaderway's
 * 4b), what a renewal may extend (6), and that a revoke by value works from any address (9).
 */
import { inCidrs } from './acl';
import { is2xx, type Step } from './history';
import type { Model } from './model';
import { needs } from './needs';
import type { Flag } from './rules';
import { ROUND_MS, SLACK_MS, SYSTEM_MAX_S } from './state';

/** Rules 1, 2, 4, 5 and 6 on a 2xx auth/token/create[-orphan]. */
export function checkCreate(m: Model, s: Step, flag: Flag): void {
  const t = s.out?.token;
  const parent = s.actor === null ? undefined : m.tokens.get(s.actor);
  if (s.call.kind !== 'create' || !t || !parent) return;
  const a = s.call.args;
  const path = `auth/token/${s.call.orphanPath ? 'create-orphan' : 'create'}`;
  const root = parent.policies.includes('root');
  const sudo = m.sudo(parent.label, path);
  const asked = a.policies?.length ? a.policies : parent.policies;
  if (t.policies.includes('root') && !root)
    flag('root', `${parent.label} (not root) created root token ${t.label}`);
  if (parent.numUses > 0)
    flag('restricted-use', `${parent.label} (num_uses ${parent.numUses}) created ${t.label}`);
  if ((a.periodS ?? 0) > 0 && !sudo)
    flag('sudo-create', `${parent.label} without sudo on ${path} created periodic ${t.label}`);
  if (a.noParent && !s.call.orphanPath && !sudo)
    flag('sudo-create', `${parent.label} without sudo on ${path} created no_parent orphan ${t.label}`);
  const unasked = t.policies.filter((p) => p !== 'default' && !asked.includes(p));
  if (unasked.length) flag('subset', `${t.label} got ${unasked.join(',')}, which it did not ask for`);
  if (t.policies.includes('default') && a.noDefault)
    flag('subset', `${t.label} got default despite no_default_policy`);
  if (!sudo) {
    const beyond = t.policies.filter((p) => p !== 'default' && !parent.policies.includes(p));
    if (beyond.length)
      flag('subset', `${t.label} got ${beyond.join(',')}, beyond its parent ${parent.label} (no sudo)`);
    if (t.policies.includes('default') && !parent.policies.includes('default'))
      flag('subset', `${t.label} got default, which its parent ${parent.label} does not have (no sudo)`);
  }
  checkLease(t.label, t.policies, t.leaseS, flag);
  const explicit = a.explicitMaxTtlS ?? 0;
  if (explicit > 0 && t.leaseS > explicit + ROUND_MS / 1000)
    flag('lifetime', `${t.label} got a ${t.leaseS}s lease, past its explicit_max_ttl ${explicit}s`);
  const remaining = parent.maxEnd - s.start;
  if (!sudo && explicit > 0 && Number.isFinite(remaining) && explicit * 1000 > remaining + SLACK_MS)
    flag(
      'lifetime',
      `${t.label} got explicit_max_ttl ${explicit}s, past its parent's remaining max ${Math.round(remaining / 1000)}s`,
    );
  // leaderway's rule 4b: an orphan of a parent without sudo dies no later than the parent may.
  if (!sudo && t.orphan && s.start + t.leaseS * 1000 - ROUND_MS > parent.maxEnd + SLACK_MS)
    flag('lifetime', `orphan ${t.label}'s ${t.leaseS}s lease outlives its parent ${parent.label}'s max`);
}

/**
 * Rule 6 on every lease handed out: within 768h for a non-root token, and, for a new one, not 0
 * (never expires). A renewal's 0 is no such claim: it is the time left when capped at the max.
 */
export function checkLease(
  label: string,
  policies: string[],
  leaseS: number,
  flag: Flag,
  issued = true,
): void {
  if (policies.includes('root')) return;
  if (leaseS > SYSTEM_MAX_S) flag('lifetime', `non-root ${label} got a ${leaseS}s lease, past 768h`);
  if (issued && leaseS === 0) flag('lifetime', `non-root ${label} never expires`);
}

/** Rule 6 on a 2xx renewal: not past the token's max lifetime. */
export function checkRenewal(m: Model, s: Step, label: string, flag: Flag): void {
  const tk = m.tokens.get(label);
  const leaseS = s.out?.leaseS;
  if (!tk || leaseS === undefined) return;
  checkLease(label, tk.policies, leaseS, flag, false);
  const until = s.start + leaseS * 1000 - ROUND_MS;
  if (until > tk.maxEnd + SLACK_MS)
    flag(
      'lifetime',
      `renewal of ${label} runs ${Math.round((until - tk.maxEnd) / 1000)}s past its max lifetime`,
    );
}

/**
 * Rule 9's last clause: a caller that may revoke, revoking a live CIDR-bound token by value from
 * outside its CIDRs, succeeds (a binding limits where a token is used, not who revokes it). Both
 * must be certainly alive until the answer came, and the caller itself unbound.
 */
export function checkRevokeAnywhere(m: Model, s: Step, target: string, flag: Flag): void {
  const t = m.tokens.get(target);
  const caller = s.actor;
  if (!t || !caller || !t.cidrs.length || inCidrs(t.cidrs, s.addr) || s.status === 0 || s.status >= 500)
    return;
  const callerOk = m.surelyAlive(caller, s.end) && (m.tokens.get(caller)?.cidrs ?? []).length === 0;
  const need = needs(m, s.call);
  if (callerOk && need && m.allows(caller, need) && m.surelyAlive(target, s.end) && !is2xx(s.status))
    flag('dead', `revoking ${target} (bound to ${t.cidrs.join(',')}) from ${s.addr} answered ${s.status}`);
}
