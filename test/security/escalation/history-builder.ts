/**
 * Hand-made histories for the checker's tests (test/security/escalation-checker.test.ts): a
 * builder that appends steps as a client would record them, with the answers a server would
 * give, and a base history with a non-root parent that may create tokens.
 */
import type { Rule } from './acl';
import { checkEscalation, type RuleId } from './checker';
import {
  type Call,
  type IssuedToken,
  kvPayload,
  type Outcome,
  type Step,
  type TokenArgs,
  type Via,
} from './history';

/** An hour, in seconds. */
export const HOUR = 3600;

/** Builds a history one step at a time; every step is 100 ms after the last unless told. */
export class History {
  readonly steps: Step[] = [];
  clock = 1_000_000;

  add(
    actor: string | null,
    call: Call,
    status: number,
    o: { out?: Outcome; addr?: string; gapMs?: number; via?: Via; standby?: Step['standby'] } = {},
  ) {
    this.clock += o.gapMs ?? 100;
    const { out, addr = '127.0.0.1', via = 'gateway', standby } = o;
    this.steps.push({
      n: this.steps.length + 1,
      actor,
      via,
      addr,
      ...(standby ? { node: 'n2', standby } : {}),
      start: this.clock,
      end: this.clock + 10,
      call,
      status,
      ...(out ? { out } : {}),
    });
    return this;
  }
  policy(name: string, rules: Rule[]) {
    return this.add('root', { kind: 'policy-write', name, rules }, 204);
  }
  /** `actor` creates `label` with `policies` (what the server answered). */
  create(
    actor: string,
    label: string,
    policies: string[],
    o: { args?: TokenArgs; orphanPath?: boolean; token?: Partial<IssuedToken>; addr?: string } = {},
  ) {
    const token: IssuedToken = {
      label,
      policies,
      leaseS: HOUR,
      numUses: 0,
      orphan: o.orphanPath ?? false,
      ...o.token,
    };
    const call: Call = { kind: 'create', orphanPath: o.orphanPath ?? false, args: o.args ?? { policies } };
    return this.add(actor, call, 200, { out: { token }, addr: o.addr });
  }
  /** `actor` creates `label` wrapped: the answer is wrapping token `wrapper`. */
  wrapCreate(actor: string, wrapper: string, args: TokenArgs = {}, ttlS = 300) {
    const wrapping = issued(wrapper, ['response-wrapping'], { leaseS: ttlS, numUses: 1, orphan: true });
    const call: Call = { kind: 'create', orphanPath: false, args, wrapTtlS: ttlS };
    return this.add(actor, call, 200, { out: { wrapping } });
  }
  /** `actor` unwraps `target` (in the body; absent: its own token), revealing `token`. */
  unwrap(actor: string, status: number, token?: IssuedToken, target?: string) {
    const call: Call = target === undefined ? { kind: 'unwrap' } : { kind: 'unwrap', token: target };
    return this.add(actor, call, status, token ? { out: { token } } : {});
  }
  /** `actor` writes `value` at KV `path` (status 0: no answer, the write may have applied). */
  kvWrite(path: string, value: string, status = 200, actor = 'root') {
    return this.add(actor, { kind: 'kv-write', path, value }, status);
  }
  /** `actor` reads KV `path` wrapped: a 2xx answer is wrapping token `wrapper`; `out` overrides. */
  wrapRead(
    actor: string,
    wrapper: string,
    path: string,
    o: { status?: number; ttlS?: number; out?: Outcome } = {},
  ) {
    const { status = 200, ttlS = 300 } = o;
    const wrapping = issued(wrapper, ['response-wrapping'], { leaseS: ttlS, numUses: 1, orphan: true });
    const out = o.out ?? (status === 200 ? { wrapping } : undefined);
    return this.add(actor, { kind: 'kv-read', path, wrapTtlS: ttlS }, status, { out });
  }
  /** `actor` unwraps `target` (absent: its own token), revealing KV data `{ v: value }`. */
  unwrapKv(actor: string, status: number, value: string, target?: string) {
    const call: Call = target === undefined ? { kind: 'unwrap' } : { kind: 'unwrap', token: target };
    return this.add(actor, call, status, { out: { kv: kvJson(value) } });
  }
  /** `actor` rewraps `target` (absent: its own token); a 2xx answer is wrapping token `next`. */
  rewrap(actor: string, status: number, target?: string, next?: string, ttlS = 300) {
    const call: Call = target === undefined ? { kind: 'rewrap' } : { kind: 'rewrap', token: target };
    const wrapping = next && issued(next, ['response-wrapping'], { leaseS: ttlS, numUses: 1, orphan: true });
    return this.add(actor, call, status, wrapping ? { out: { wrapping } } : {});
  }
  /** `actor` (null: no token) looks up `target` (absent: its own token); a 2xx tells `told`. */
  lookup(actor: string | null, status: number, target?: string, told?: { path: string; ttlS: number }) {
    const call: Call =
      target === undefined ? { kind: 'wrap-lookup' } : { kind: 'wrap-lookup', token: target };
    return this.add(actor, call, status, told ? { out: { lookup: told } } : {});
  }
  approle() {
    return this.add('root', { kind: 'auth-enable', mount: 'approle' }, 204);
  }
  role(name: string, fields: Record<string, unknown>, roleId: string, actor = 'root') {
    this.add(actor, { kind: 'role-write', role: name, fields }, 204);
    return this.add('root', { kind: 'role-id-read', role: name }, 200, { out: { roleId } });
  }
  secret(
    role: string,
    label: string,
    o: { numUses?: number; ttlS?: number; args?: Record<string, unknown> } = {},
  ) {
    const out = { secret: { label, numUses: o.numUses ?? 0, ttlS: o.ttlS ?? 0 } };
    return this.add('root', { kind: 'secret-id', role, args: o.args ?? {} }, 200, { out });
  }
  /** Root generates a secret ID of `role` wrapped: the answer is wrapping token `wrapper`. */
  wrapSecret(role: string, wrapper: string, ttlS = 300) {
    const wrapping = issued(wrapper, ['response-wrapping'], { leaseS: ttlS, numUses: 1, orphan: true });
    return this.add('root', { kind: 'secret-id', role, args: {}, wrapTtlS: ttlS }, 200, {
      out: { wrapping },
    });
  }
  login(roleId: string, secret: string, token: IssuedToken, addr = '127.0.0.1') {
    return this.add(null, { kind: 'login', roleId, secret }, 200, { out: { token }, addr });
  }
  /** A copy to branch from (the builder appends in place). */
  fork(): History {
    const copy = new History();
    copy.steps.push(...structuredClone(this.steps));
    copy.clock = this.clock;
    return copy;
  }
  /** The ids of the rules the checker finds broken, sorted. */
  rules(): RuleId[] {
    return [...new Set(checkEscalation(this.steps).violations.map((v) => v.rule))].sort();
  }
}

/** The KV data a write of `value` stores, as an unwrap records it. */
export const kvJson = (value: string) => JSON.stringify(kvPayload(value));

/** What a login answers (an orphan, an hour's lease unless told). */
export const issued = (label: string, policies: string[], o: Partial<IssuedToken> = {}): IssuedToken => ({
  label,
  policies,
  leaseS: HOUR,
  numUses: 0,
  orphan: true,
  ...o,
});

/** A history with two policies and a non-root parent `t1` that may create tokens (no sudo). */
export function base(): History {
  return new History()
    .policy('maker', [
      { path: 'auth/token/create', caps: ['update'] },
      { path: 'auth/token/create-orphan', caps: ['update'] },
      { path: 'secret/data/a', caps: ['read'] },
    ])
    .policy('other', [{ path: 'secret/data/b/*', caps: ['read'] }])
    .create('root', 't1', ['default', 'maker']);
}
