/**
 * The escalation checker: replays a history through the model and checks every step, before
 * applying it, against the privilege rules (numbered as in issue 23):
 *   1 root      a root token only from auth/token/create* by a root parent; never from a login
 *   2 subset    without sudo a child gets at most its parent's policies, and `default` only if
 *               the parent has it (never with no_default_policy); never a policy it did not ask for
 *   3 approle   a login carries exactly its role's policies (+ default); a role naming root is refused
 *   4 restricted-use  a parent with num_uses never creates a token
 *   5 sudo-create     periodic tokens and no_parent orphans need root or sudo on the create path
 *   6 lifetime  non-root leases ≤ 768h; no explicit_max_ttl past a non-sudo parent's remaining
 *               max; AppRole tokens within their role's max; no renewal past the max
 *   7 bounds    bound CIDRs hold (inherited by children); secret IDs within their role's bounds
 *   8 role-id   role IDs are unique; a login gets the role that owns its role ID
 *   9 dead      revoked, spent, expired (2 s slack) and made-up tokens get 403, and their
 *               lookups 403 / accessor calls 4xx; revoke by value works from any address
 *   10 sudo-path   sudo paths need sudo   11 oracle  no mount oracle   12 capability  every 2xx
 *               was allowed by the caller's policies (the model's own evaluator) or root
 *   13 wrapping  a wrapping token is refused (403) everywhere but its own unwrap; an unwrap
 *               succeeds once per wrapping token, never for another token; what it reveals
 *               obeys the rules of the call it wrapped (checked when no policy changed between)
 *               and is what that call answered (a KV read: the data at wrap time, whatever was
 *               written since); a refused call hands out no wrapping token, and a wrapped answer
 *               shows nothing in the clear; a wrapped read the caller may not do is a 403.
 *               A rewrap succeeds only for a live, unspent wrapping token, spends it, and its
 *               new token keeps the creation TTL; a lookup needs no token (never 403), tells
 *               only of a live wrapping token, its true creation path and TTL, and spends
 *               nothing: a wrapping token certainly live is never refused its unwrap (400)
 * The server's capabilities-self answers are compared with the model's evaluator; differences
 * are notes (the model may be the one that is wrong), not violations.
 */
import { inCidrs } from './acl';
import { checkLogin, checkSecretId } from './checker-approle';
import { checkCreate, checkRenewal, checkRevokeAnywhere } from './checker-tokens';
import { checkLookup, checkRewrap, checkWrappedAnswer, checkWrappedRead } from './checker-wrapping';
import { describeStep, is2xx, type Step } from './history';
import { Model } from './model';
import type { Flag, RuleId, Violation } from './rules';

export type { Flag, RuleId, Violation };

import { needs } from './needs';

/** What the run exercised, so a test can tell a run that could not fail. */
export interface EscalationStats {
  steps: number;
  /** kind → [2xx, 4xx, other]. */
  byKind: Record<string, [number, number, number]>;
  tokensIssued: number;
  nonRootCreates: number;
  logins: number;
  deadTokenRequests: number;
}

export interface EscalationResult {
  violations: Violation[];
  notes: string[];
  stats: EscalationStats;
}

/** The token was authenticated: a verdict other than 403 (5xx and no answer tell nothing). */
const accepted = (s: number) => is2xx(s) || (s >= 400 && s < 500 && s !== 403);
/** The server answered for itself (not a 5xx, not a lost connection). */
const verdict = (s: number) => s > 0 && s < 500;
/** Why a token named in a body is certainly dead (a label the history never issued: made up). */
const targetDead = (m: Model, label: string, t: number) =>
  m.tokens.has(label) ? m.deadReason(label, t) : 'never issued';

/** Checks a whole history. */
export function checkEscalation(history: readonly Step[]): EscalationResult {
  const m = new Model();
  const violations: Violation[] = [];
  const notes: string[] = [];
  const stats: EscalationStats = {
    steps: history.length,
    byKind: {},
    tokensIssued: 0,
    nonRootCreates: 0,
    logins: 0,
    deadTokenRequests: 0,
  };
  for (const s of history) {
    const flag = (rule: RuleId, reason: string) =>
      violations.push({ step: s.n, rule, reason, at: describeStep(s) });
    // Wrapped calls are counted apart (`kv-read+wrap`), so a run shows it made them.
    const kind = 'wrapTtlS' in s.call && s.call.wrapTtlS !== undefined ? `${s.call.kind}+wrap` : s.call.kind;
    const counts = stats.byKind[kind] ?? [0, 0, 0];
    stats.byKind[kind] = counts;
    counts[is2xx(s.status) ? 0 : s.status >= 400 && s.status < 500 ? 1 : 2]++;
    if (s.out?.token && is2xx(s.status)) {
      stats.tokensIssued++;
      if (s.call.kind === 'login') stats.logins++;
      else if (s.actor !== null && !m.isRoot(s.actor)) stats.nonRootCreates++;
    }
    if (s.call.kind !== 'pause') {
      checkActor(m, s, flag, stats);
      checkCall(m, s, flag, notes);
    }
    m.apply(s);
  }
  return { violations, notes, stats };
}

/** Rules 7, 9, 10, 12 for whoever sent the request. */
function checkActor(m: Model, s: Step, flag: Flag, stats: EscalationStats): void {
  // sys/wrapping/lookup needs no token: the one sent is not read (checkLookup judges the call).
  if (s.actor === null || s.call.kind === 'wrap-lookup') return;
  // An unwrap answers a bad wrapping token 400, as OpenBao — the caller's own when it is the one.
  const refused = (status: number) => status === 403 || (s.call.kind === 'unwrap' && status === 400);
  const tk = m.tokens.get(s.actor);
  if (!tk) {
    if (accepted(s.status) && !refused(s.status))
      flag('dead', `${s.actor} was never issued, yet it was accepted (${s.status})`);
    return;
  }
  const dead = m.deadReason(s.actor, s.start);
  if (dead) {
    stats.deadTokenRequests++;
    if (verdict(s.status) && !refused(s.status))
      flag('dead', `${s.actor} is dead (${dead}), yet got ${s.status}, not 403`);
    return;
  }
  if (tk.source === 'wrap') {
    const own = s.call.kind === 'unwrap' && (s.call.token ?? s.actor) === s.actor;
    if (own ? false : s.call.kind === 'unwrap' ? is2xx(s.status) : accepted(s.status))
      flag('wrapping', `wrapping token ${s.actor} was accepted (${s.status}) for ${s.call.kind}`);
    return;
  }
  // An unwrap checks the wrapping token before the caller (as OpenBao): a bad one is 400 even for
  // a caller refused here, as for a dead caller above.
  if (accepted(s.status) && !refused(s.status) && tk.cidrs.length && !inCidrs(tk.cidrs, s.addr))
    flag('bounds', `${s.actor} is bound to ${tk.cidrs.join(',')} yet was accepted from ${s.addr}`);
  const need = needs(m, s.call);
  if (is2xx(s.status) && need && !m.allows(s.actor, need)) {
    const granted = [...m.acl(s.actor).capabilities(need.path)].sort().join(',') || 'nothing';
    const lacksOnlySudo =
      need.caps.includes('sudo') &&
      m.acl(s.actor).allows(
        need.path,
        need.caps.filter((c) => c !== 'sudo'),
      );
    flag(
      lacksOnlySudo ? 'sudo-path' : 'capability',
      `${s.actor} (${tk.policies.join(',')}) needs ${need.caps.join('+')} on ${need.path}, has ${granted}`,
    );
  }
}

/** The rules of each kind of call. */
function checkCall(m: Model, s: Step, flag: Flag, notes: string[]): void {
  const c = s.call;
  const ok = is2xx(s.status);
  checkWrappedAnswer(s, flag);
  switch (c.kind) {
    case 'create':
      if (ok) checkCreate(m, s, flag);
      break;
    case 'login':
      if (ok) checkLogin(m, s, flag);
      break;
    case 'role-write':
      if (ok && c.fields.token_policies?.includes('root'))
        flag('approle', `role ${c.role} was written naming the root policy`);
      break;
    case 'role-id-write': {
      const owner = m.roleOwning(c.roleId);
      if (ok && owner && owner.name !== c.role)
        flag('role-id', `role ${c.role} took role_id ${c.roleId}, which role ${owner.name} owns`);
      break;
    }
    case 'secret-id':
      if (ok) checkSecretId(m, s, flag);
      break;
    case 'lookup': {
      const dead = targetDead(m, c.token, s.start);
      if (dead && verdict(s.status) && s.status !== 403)
        flag('dead', `lookup of ${c.token} (dead: ${dead}) answered ${s.status}, not 403`);
      break;
    }
    case 'renew':
    case 'renew-accessor':
    case 'lookup-accessor': {
      // A dead token is neither renewed nor shown by accessor: 4xx (renew by value: not 2xx).
      const dead = targetDead(m, c.token, s.start);
      if (dead && (is2xx(s.status) || (c.kind !== 'renew' && s.status >= 500)))
        flag('dead', `${c.kind} of ${c.token} (dead: ${dead}) answered ${s.status}`);
      if (ok && c.kind !== 'lookup-accessor') checkRenewal(m, s, c.token, flag);
      break;
    }
    case 'renew-self':
      if (ok && s.actor) checkRenewal(m, s, s.actor, flag);
      break;
    case 'revoke':
      checkRevokeAnywhere(m, s, c.token, flag);
      break;
    case 'ui-mount': {
      const mount = c.path === 'secret' || c.path.startsWith('secret/') ? 'secret/' : null;
      if (ok && !mount)
        flag('oracle', `ui/mounts answered ${s.status} for ${c.path}, where nothing is mounted`);
      else if (ok && mount && s.actor && !m.isRoot(s.actor) && !m.acl(s.actor).mountAccess(mount))
        flag(
          'oracle',
          `ui/mounts showed ${mount} to ${s.actor}, whose policies grant nothing on or under it`,
        );
      break;
    }
    case 'unwrap':
      checkUnwrap(m, s, flag);
      break;
    case 'rewrap':
      checkRewrap(m, s, flag);
      break;
    case 'wrap-lookup':
      checkLookup(m, s, flag);
      break;
    case 'kv-read':
      checkWrappedRead(m, s, flag);
      break;
    case 'caps-self':
      if (ok && s.actor && s.out?.caps) {
        for (const p of c.paths) {
          const model = m.isRoot(s.actor) ? ['root'] : [...m.acl(s.actor).capabilities(p)].sort();
          const server = [...(s.out.caps[p] ?? [])].sort().join(',');
          if (server !== (model.length ? model : ['deny']).join(','))
            notes.push(
              `#${s.n} capabilities-self on ${p} for ${s.actor}: server ${server}, model ${model.join(',') || 'deny'}`,
            );
        }
      }
      break;
    default:
      break;
  }
}

/** Rule 13 on an unwrap, and the wrapped call's own rules on what it revealed. */
function checkUnwrap(m: Model, s: Step, flag: Flag): void {
  const target = Model.wrapTarget(s);
  if (target === null) return;
  // Nothing but an unwrap or a rewrap spends a wrapping token (a lookup does not): one the model
  // knows unspent and far from its TTL is not refused as invalid (400) — by itself, or by a
  // caller that is no wrapping token (a wrapping token opening another is refused 400, unspent).
  const byWrapper = s.actor !== target && m.tokens.get(s.actor ?? '')?.source === 'wrap';
  if (s.status === 400 && !byWrapper && m.wrappingSurelyLive(target, s.end))
    flag('wrapping', `unwrap of ${target}, live and unspent, was refused 400 (spent by something else)`);
  if (!is2xx(s.status)) return;
  if (!m.wrapped.has(target)) {
    flag('wrapping', `unwrap of ${target}, which is no wrapping token, answered ${s.status}`);
    return;
  }
  if (m.unwrapped.has(target)) flag('wrapping', `wrapping token ${target} was unwrapped twice`);
  const dead = m.deadReason(target, s.start);
  if (dead) flag('dead', `unwrap of ${target} (dead: ${dead}) answered ${s.status}`);
  if (m.rewrapped.has(target))
    flag('wrapping', `wrapping token ${target} was unwrapped after a rewrap replaced it`);
  checkRevealedIsWrapped(m, s, target, flag);
  const revealed = m.revealed(s);
  if (revealed?.call.kind === 'create') checkCreate(m, revealed, flag);
  if (revealed?.call.kind === 'secret-id') checkSecretId(m, revealed, flag);
}

/**
 * What an unwrap reveals is what the wrapped call answered: a token for a create, a secret ID
 * for a secret-ID generation, and for a KV read the data the path held when it was wrapped (a
 * write since then changes nothing), whether or not a rewrap came between.
 */
function checkRevealedIsWrapped(m: Model, s: Step, target: string, flag: Flag): void {
  const w = m.wrapped.get(target);
  const out = s.out ?? {};
  const kind = w?.call.kind;
  const got = out.token ? 'a token' : out.secret ? 'a secret ID' : out.kv ? `KV data ${out.kv}` : 'nothing';
  if ((kind === 'create' && !out.token) || (kind === 'secret-id' && !out.secret))
    flag('wrapping', `unwrap of ${target} revealed ${got}, not what its ${kind} answered`);
  const kv = m.wrappedKv.get(target);
  if (kind === 'kv-read' && kv?.size && !(out.kv && kv.has(out.kv)))
    flag(
      'wrapping',
      `unwrap of ${target} revealed ${got}; the read it wraps answered ${[...kv].join(' or ')}`,
    );
}
