/**
 * The checker's response-wrapping rules beyond the unwrap itself (rule 13, checker.ts): what a
 * wrapped answer may hand out, a wrapped KV read the caller may not do, sys/wrapping/rewrap and
 * sys/wrapping/lookup (node/api/routes/sys-wrapping.ts, docs/GUARANTEES.md G8d).
 */
import { type Call, is2xx, type Step } from './history';
import { Model } from './model';
import { needs } from './needs';
import type { Flag } from './rules';

/** The server answered for itself (not a 5xx, not a lost connection). */
const verdict = (s: number) => s > 0 && s < 500;

/** A refused call never hands out a wrapping token; a wrapped answer shows nothing in the clear. */
export function checkWrappedAnswer(s: Step, flag: Flag): void {
  const w = s.out?.wrapping;
  if (!w) return;
  if (!is2xx(s.status))
    flag('wrapping', `a refused ${s.call.kind} (${s.status}) handed out wrapping token ${w.label}`);
  else if (s.out?.clear)
    flag('wrapping', `the wrapped answer holding ${w.label} carried its content in the clear too`);
}

/**
 * A wrapped KV read the caller may not do is refused 403 (its 2xx is rule 12's, checkActor): not
 * a 404 or any other verdict that would tell the path from one it may read.
 */
export function checkWrappedRead(m: Model, s: Step, flag: Flag): void {
  const c = s.call;
  const tk = s.actor === null ? undefined : m.tokens.get(s.actor);
  if (c.kind !== 'kv-read' || c.wrapTtlS === undefined || !tk || tk.source === 'wrap') return;
  if (m.deadReason(tk.label, s.start) || !verdict(s.status) || is2xx(s.status) || s.status === 403) return;
  const need = needs(m, c);
  if (need && !m.allows(tk.label, need))
    flag(
      'capability',
      `${tk.label} may not read ${c.path}, yet its wrapped read answered ${s.status}, not 403`,
    );
}

/** The path a wrapped call's wrapping token was created at (its lookup's creation_path). */
function creationPath(c: Call): string | null {
  if (c.kind === 'create') return `auth/token/${c.orphanPath ? 'create-orphan' : 'create'}`;
  if (c.kind === 'secret-id') return `auth/approle/role/${c.role}/secret-id`;
  return c.kind === 'kv-read' ? c.path : null;
}

/** Flags a 2xx rewrap or lookup (`what`) of a token that is not a live, unspent wrapping token. */
function checkServable(m: Model, target: string, t: number, flag: Flag, what: string): void {
  if (!m.wrapped.has(target)) {
    flag('wrapping', `${what} of ${target}, which is no wrapping token, succeeded`);
    return;
  }
  const spent = m.unwrapped.has(target) ? 'an unwrap' : m.rewrapped.has(target) ? 'a rewrap' : null;
  if (spent) flag('wrapping', `${what} of ${target}, which ${spent} spent, succeeded`);
  const dead = m.deadReason(target, t);
  if (dead) flag('dead', `${what} of ${target} (dead: ${dead}) succeeded`);
}

/**
 * A rewrap succeeds only for a live, unspent wrapping token (spending it: the model marks it, so
 * a later unwrap of it is rule 9's and 13's), and its new token keeps the old one's creation TTL.
 * Who may rewrap is rule 12's (`update` on sys/wrapping/rewrap) and 13's (no wrapping token).
 */
export function checkRewrap(m: Model, s: Step, flag: Flag): void {
  const target = Model.wrapTarget(s);
  if (!is2xx(s.status) || target === null) return;
  checkServable(m, target, s.start, flag, 'rewrap');
  const w = s.out?.wrapping;
  const ttl = m.wrapTtl.get(target);
  if (w && ttl !== undefined && w.leaseS !== ttl)
    flag('lifetime', `rewrap of ${target} gave ${w.label} a ${w.leaseS}s TTL, not its ${ttl}s`);
}

/**
 * A lookup needs no token, so it is never refused 403; it tells only of a live, unspent wrapping
 * token, and tells the truth: the path the wrapped call was made at and the TTL it asked for.
 * (That it spends nothing is checked at the unwrap: checker.ts, checkUnwrap.)
 */
export function checkLookup(m: Model, s: Step, flag: Flag): void {
  if (s.status === 403) flag('wrapping', 'sys/wrapping/lookup, which needs no token, answered 403');
  const target = Model.wrapTarget(s);
  if (!is2xx(s.status)) return;
  if (target === null) {
    flag('wrapping', 'a lookup naming no token succeeded');
    return;
  }
  checkServable(m, target, s.start, flag, 'lookup');
  const w = m.wrapped.get(target);
  const path = w ? creationPath(w.call) : null;
  const ttl = m.wrapTtl.get(target);
  const told = s.out?.lookup;
  if (told && path !== null && ttl !== undefined && (told.path !== path || told.ttlS !== ttl))
    flag('wrapping', `lookup of ${target} told ${told.path} (${told.ttlS}s); it wraps ${path} (${ttl}s)`);
}
