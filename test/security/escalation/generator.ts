/**
 * The generator: seeded random calls, valid-ish and invalid-ish, made by live, dead and made-up
 * tokens (root only sometimes), over a small universe of paths, so that privilege rules meet
 * each other often: policies with globs, sudo and deny; tokens asking for more than their
 * parent has; AppRole roles naming root or other roles' role IDs; secret IDs outside their
 * role's bounds; revocations, renewals, lookups, sudo paths and mount probes. More often than not
 * the actor is one the model says is allowed, so the interesting 2xx paths are taken too (root
 * writes the KV secrets first, so allowed reads find something).
 */
import type { Rng } from '../../chaos/rng';
import type { Cap, Rule } from './acl';
import {
  type Call,
  is2xx,
  type RoleFields,
  type SecretArgs,
  type Step,
  type TokenArgs,
  type Via,
} from './history';
import { Model } from './model';
import { type Need, needs } from './needs';
import {
  ADDRS,
  CAPS,
  CIDRS,
  MAX_TTLS,
  POLICIES,
  POLICY_PATHS,
  PROBE_PATHS,
  ROLES,
  TTLS,
  WEIGHTS,
  WRAPPING_CALLS,
} from './universe';

/** The right sys/wrapping/rewrap needs. */
const REWRAP: Rule = { path: 'sys/wrapping/rewrap', caps: ['update'] };

type Kind = Call['kind'];

/** A call with who makes it and how. */
export interface Planned {
  actor: string | null;
  via: Via;
  /** X-Forwarded-For: the client address through the gateway; a node must ignore it. */
  xff?: string;
  call: Call;
}

/** Produces the next call from the model's state; `after` queues follow-ups a step calls for. */
export class Generator {
  private readonly queue: Planned[] = [];
  private customIds = 0;
  /** KV writes so far: each stores its own value, so an unwrapped read tells which it saw. */
  private kvWrites = 0;

  /**
   * `w` draws what response wrapping adds (wrapped KV reads, rewraps, lookups and their
   * follow-ups, the rewrap right in policies): a stream of its own, so those calls shift as few of
   * `r`'s draws as they can, and a seed keeps making much the same other calls.
   */
  constructor(
    private readonly r: Rng,
    private readonly m: Model,
    private readonly w: Rng,
  ) {
    // A start as root: AppRole mounted, some policies, tokens and a role, so non-root actors exist.
    const root = (call: Call): Planned => ({ actor: 'root', via: 'gateway', call });
    this.queue.push(root({ kind: 'auth-enable', mount: 'approle' }));
    // Each starting policy also grants one delegating right, so non-root callers create tokens,
    // write roles and policies from the start (random writes may take it away later).
    const grants: Array<[string, Rule]> = [
      ['p1', { path: this.r.pick(['auth/token/create', 'auth/token/create*']), caps: ['update'] }],
      ['p2', { path: 'auth/approle/role/*', caps: ['create', 'read', 'update'] }],
      ['p3', { path: 'sys/policy/*', caps: ['create', 'update'] }],
    ];
    for (const [name, grant] of grants) {
      const rules = this.rules().filter((x) => x.path !== grant.path);
      this.queue.push(root({ kind: 'policy-write', name, rules: [...rules, grant] }));
    }
    for (let i = 0; i < 4; i++)
      this.queue.push(root({ kind: 'create', orphanPath: false, args: { policies: this.somePolicies() } }));
    this.queue.push(root({ kind: 'role-write', role: 'r1', fields: this.roleFields() }));
    // Secrets to read, so a read allowed (on the active or a standby serving it) answers 2xx.
    for (const path of ['secret/data/a', 'secret/data/b/x', 'secret/data/c/x'])
      this.queue.push(root({ kind: 'kv-write', path, value: `w${++this.kvWrites}` }));
    // A wrapped read from the start, so its follow-ups (lookup, rewrap, unwrap) come early.
    this.queue.push(root({ kind: 'kv-read', path: 'secret/data/a', wrapTtlS: 300 }));
  }

  /** The next call to make at time `now`. */
  next(now: number): Planned {
    const queued = this.queue.shift();
    if (queued) return queued;
    if (this.w.chance(WRAPPING_CALLS)) return this.wrappingCall(now);
    const kind = this.weighted();
    const call = this.call(kind, now);
    const need = needs(this.m, call);
    let actor = kind === 'login' || kind === 'pause' ? null : this.actor(now, need);
    // An unwrap of one's own token: mostly by a wrapping token (live, spent or expired).
    const wrappers = [...this.m.wrapped.keys()];
    // With a token in the body, sometimes by a wrapping token too (which may open only itself).
    if (call.kind === 'unwrap' && wrappers.length && this.r.chance(call.token === undefined ? 0.8 : 0.3))
      actor = this.r.pick(wrappers);
    // A wrapped read is mostly by a caller allowed to read (few are by chance), so most unwraps
    // reveal something; the others must be refused 403 without a wrapping token.
    if (call.kind === 'kv-read' && call.wrapTtlS !== undefined && need && this.w.chance(0.5)) {
      const able = this.liveTokens().filter((l) => this.m.allows(l, need));
      actor = able.length ? this.w.pick(able) : 'root';
    }
    // The harness's root token must outlive the run: someone else revokes themselves instead.
    if (kind === 'revoke-self' && actor === 'root') actor = this.actor(now, null);
    if (kind === 'revoke-self' && actor === 'root') actor = 'bogus1';
    if (call.kind === 'create' && actor) {
      const own = (this.m.tokens.get(actor)?.policies ?? []).filter((p) => p !== 'root');
      // Often ask for a subset of what the parent has: the legitimate path.
      if (own.length && this.r.chance(0.5)) call.args.policies = own.filter(() => this.r.chance(0.6));
      // A root parent asking for nothing makes another root token: keep those few.
      else if (this.m.isRoot(actor) && !call.args.policies?.length && this.r.chance(0.8))
        call.args.policies = this.somePolicies();
    }
    // Through the gateway (which sends everything to the active, believing X-Forwarded-For),
    // else straight to a node drawn among the active and the standbys (the runner's cluster has
    // two standbys, which serve reads themselves): the same answers are expected wherever it lands.
    const via: Via = this.r.chance(0.4) ? 'gateway' : this.r.chance(2 / 3) ? 'standby' : 'active';
    return { actor, via, xff: this.address(actor, call), call };
  }

  /**
   * A rewrap or a lookup (all drawn from `w`), of a token in the body or the caller's own: mostly
   * by a wrapping token then — which may look itself up, not rewrap; with a token in the body,
   * sometimes by a wrapping token too, and a lookup often by no token at all.
   */
  private wrappingCall(now: number): Planned {
    const w = this.w;
    const call = this.call(w.pick(['rewrap', 'wrap-lookup'] as const), now);
    if (call.kind !== 'rewrap' && call.kind !== 'wrap-lookup') throw new Error('not a wrapping call');
    let actor: string | null = this.actor(now, needs(this.m, call), w);
    const wrappers = [...this.m.wrapped.keys()];
    if (wrappers.length && w.chance(call.token === undefined ? 0.8 : 0.3)) actor = w.pick(wrappers);
    if (call.kind === 'wrap-lookup' && call.token !== undefined && w.chance(0.4)) actor = null;
    const via: Via = w.chance(0.4) ? 'gateway' : w.chance(2 / 3) ? 'standby' : 'active';
    return { actor, via, xff: this.address(actor, call, w), call };
  }

  /**
   * Queues follow-ups: learn a new role's role ID; re-enable AppRole after someone disabled it;
   * on a wrapped answer, sometimes look it up (with no token, or by itself) or rewrap it first,
   * then unwrap most at once (by the wrapping token, or by another token with it in the body),
   * and sometimes again; after a rewrap, sometimes try the token it spent.
   */
  after(s: Step): void {
    if (!is2xx(s.status)) return;
    const c = s.call;
    const w = s.out?.wrapping?.label;
    // What wrapped creates and secret IDs always had comes from `r`; the rest from `w`.
    const r = c.kind === 'create' || c.kind === 'secret-id' ? this.r : this.w;
    if (w && this.w.chance(0.3)) {
      const own = this.w.chance(0.4);
      const via: Via = this.w.pick(['gateway', 'standby', 'active']);
      const call: Call = own ? { kind: 'wrap-lookup' } : { kind: 'wrap-lookup', token: w };
      // It needs no token: half the time none is sent, else anyone's (dead or made-up ones too).
      const anyone = this.w.chance(0.5) ? null : this.actor(Date.now(), null, this.w);
      this.queue.push({ actor: own ? w : anyone, via, call });
    }
    if (w && this.w.chance(0.15)) {
      const able = this.liveTokens().filter((l) => this.m.allows(l, REWRAP));
      const actor = able.length && this.w.chance(0.5) ? this.w.pick(able) : 'root';
      this.queue.push({ actor, via: 'gateway', call: { kind: 'rewrap', token: w } });
    }
    // A write between a wrapped read and its unwrap: the unwrap still tells what was read.
    if (w && c.kind === 'kv-read' && this.w.chance(0.4))
      this.queue.push({
        actor: 'root',
        via: 'gateway',
        call: { kind: 'kv-write', path: c.path, value: `w${++this.kvWrites}` },
      });
    const spent = c.kind === 'rewrap' ? Model.wrapTarget(s) : null;
    if (spent && this.w.chance(0.3))
      this.queue.push({ actor: spent, via: 'gateway', call: { kind: 'unwrap' } });
    // Another wrapping token still unspent tries to open this one: it may open only itself.
    const others = w ? this.liveTokens().filter((l) => l !== w && this.m.wrapped.has(l)) : [];
    if (w && others.length && r.chance(0.5))
      this.queue.push({ actor: r.pick(others), via: 'gateway', call: { kind: 'unwrap', token: w } });
    if (w && r.chance(0.6)) {
      const body = r.chance(0.3);
      const via: Via = r.chance(0.6) ? 'gateway' : 'standby';
      const unwrap: Planned = body
        ? { actor: r.pick(['root', ...this.liveTokens()]), via, call: { kind: 'unwrap', token: w } }
        : { actor: w, via, call: { kind: 'unwrap' } };
      this.queue.push(unwrap);
      if (r.chance(0.3)) this.queue.push({ ...unwrap, via: 'active' });
    }
    if (c.kind === 'role-write' && this.m.roles.get(c.role)?.roleId === undefined)
      this.queue.push({ actor: 'root', via: 'gateway', call: { kind: 'role-id-read', role: c.role } });
    if (c.kind === 'auth-disable' && c.mount === 'approle')
      this.queue.push({ actor: 'root', via: 'gateway', call: { kind: 'auth-enable', mount: 'approle' } });
  }

  private weighted(): Kind {
    let x = this.r.next() * WEIGHTS.reduce((a, [, w]) => a + w, 0);
    for (const [k, w] of WEIGHTS) {
      x -= w;
      if (x < 0) return k;
    }
    return 'create';
  }

  private actor(now: number, need: Need | null, r = this.r): string {
    const labels = [...this.m.tokens.keys()];
    const live = labels.filter((l) => l !== 'root' && !this.m.deadReason(l, now));
    const x = r.next();
    if (x < 0.07) return `bogus${r.int(1, 3)}`;
    const dead = labels.filter((l) => this.m.deadReason(l, now));
    if (x < 0.17 && dead.length) return r.pick(dead);
    if (x < 0.24 || live.length === 0) return 'root';
    // Tokens with a use limit often, so their last use (and what comes after it) is exercised.
    const limited = live.filter((l) => (this.m.tokens.get(l)?.numUses ?? 0) > 0);
    if (limited.length && r.chance(0.2)) return r.pick(limited);
    const able = need ? live.filter((l) => this.m.allows(l, need)) : [];
    return able.length && r.chance(0.6) ? r.pick(able) : r.pick(live);
  }

  /** An X-Forwarded-For: often inside the caller's (or the login's) CIDRs, so bound tokens work. */
  private address(actor: string | null, call: Call, r = this.r): string | undefined {
    let bound = actor ? (this.m.tokens.get(actor)?.cidrs ?? []) : [];
    if (call.kind === 'login') {
      const s = this.m.secrets.get(call.secret);
      bound = s?.cidrList.length
        ? s.cidrList
        : (this.m.roles.get(s?.role ?? '')?.fields.secret_id_bound_cidrs ?? []);
    }
    if (bound.length && r.chance(0.7)) {
      const b = r.pick(bound);
      return b.endsWith('/32') || !b.includes('/') ? b.split('/')[0] : b.replace(/\.0\/\d+$/, '.7');
    }
    return r.chance(0.2) ? undefined : r.pick(ADDRS);
  }

  private call(kind: Kind, now: number): Call {
    const r = this.r;
    switch (kind) {
      case 'policy-write':
        return { kind, name: r.pick(POLICIES), rules: this.rules() };
      case 'policy-delete':
        return { kind, name: r.pick(POLICIES) };
      case 'create':
        return { kind, orphanPath: r.chance(0.25), args: this.tokenArgs(), ...this.maybeWrapped() };
      case 'role-write':
        return { kind, role: r.pick(ROLES), fields: this.roleFields() };
      case 'role-id-read':
        return { kind, role: r.pick(ROLES) };
      case 'role-id-write': {
        // Half the time another role's role ID: taking it over must be refused.
        const role = r.pick(ROLES);
        const others = [...this.m.roles.values()].flatMap((x) =>
          x.roleId && x.name !== role ? [x.roleId] : [],
        );
        const roleId = others.length && r.chance(0.5) ? r.pick(others) : `rid-${++this.customIds}`;
        return { kind, role, roleId };
      }
      case 'secret-id':
        return { kind, role: r.pick(ROLES), args: this.secretArgs(), ...this.maybeWrapped() };
      case 'login': {
        const secrets = [...this.m.secrets.values()];
        const s = secrets.length && r.chance(0.9) ? r.pick(secrets) : undefined;
        const own = this.m.roles.get(s?.role ?? '')?.roleId;
        const ids = [...this.m.roles.values()].flatMap((x) => (x.roleId ? [x.roleId] : []));
        const roleId = own && r.chance(0.85) ? own : ids.length && r.chance(0.7) ? r.pick(ids) : 'rid-nobody';
        return { kind, roleId, secret: s?.label ?? 'sbogus' };
      }
      case 'revoke':
      case 'revoke-orphan':
      case 'lookup':
      case 'revoke-accessor':
      case 'lookup-accessor':
        return { kind, token: this.target(now) };
      case 'renew':
      case 'renew-accessor':
        return { kind, token: this.target(now), ...this.increment() };
      case 'renew-self':
        return { kind, ...this.increment() };
      case 'revoke-self':
      case 'lookup-self':
      case 'kv-list':
      case 'accessors':
        return { kind };
      case 'caps-self':
        return { kind, paths: [r.pick(PROBE_PATHS), r.pick(PROBE_PATHS)] };
      case 'kv-read':
        return { kind, path: `secret/data/${r.pick(['a', 'b/x', 'c/x'])}`, ...this.maybeWrapped(this.w) };
      case 'kv-write':
        return { kind, path: `secret/data/${r.pick(['a', 'b/x', 'c/x'])}`, value: `w${++this.kvWrites}` };
      case 'auth-enable':
      case 'auth-read':
      case 'auth-disable':
        return { kind, mount: r.chance(0.06) ? 'approle' : r.pick(['x1', 'x2']) };
      case 'ui-mount':
        return { kind, path: r.pick(['secret/data/a', 'secret', 'secret/data/b/x', 'nomount/x']) };
      case 'unwrap':
        // The caller's own token (next() makes the caller a wrapping token, often), or one in the body.
        return r.chance(0.6) ? { kind } : { kind, token: this.wrappingOrAny(now) };
      case 'rewrap':
      case 'wrap-lookup':
        return this.w.chance(0.3) ? { kind } : { kind, token: this.wrappingOrAny(now, this.w) };
      case 'pause':
        return { kind, ms: r.int(300, 1500) };
    }
  }

  /** Sometimes a wrapped answer, with a TTL that lasts the run or runs out within it. */
  private maybeWrapped(r = this.r): { wrapTtlS?: number } {
    return r.chance(0.25) ? { wrapTtlS: r.pick([1, 300]) } : {};
  }

  /** A wrapping token (any state) most of the time, else any target. */
  private wrappingOrAny(now: number, r = this.r): string {
    const wrappers = [...this.m.wrapped.keys()];
    return wrappers.length && r.chance(0.7) ? r.pick(wrappers) : this.target(now, r);
  }

  /** Live tokens other than root. */
  private liveTokens(): string[] {
    const now = Date.now();
    return [...this.m.tokens.keys()].filter((l) => l !== 'root' && !this.m.deadReason(l, now));
  }

  /** A token to act on: mostly live, some dead, a few made up; never the harness's root. */
  private target(now: number, r = this.r): string {
    const all = [...this.m.tokens.keys()].filter((l) => l !== 'root');
    const live = all.filter((l) => !this.m.deadReason(l, now));
    if (r.chance(0.08) || all.length === 0) return `bogus${r.int(1, 3)}`;
    return live.length && r.chance(0.75) ? r.pick(live) : r.pick(all);
  }

  private increment(): { incrementS?: number } {
    return this.r.chance(0.4) ? { incrementS: this.r.pick([2, 60, 4_000_000]) } : {};
  }

  private rules(): Rule[] {
    const byPath = new Map<string, Set<Cap>>();
    for (let i = this.r.int(1, 4); i > 0; i--) {
      const path = this.r.pick(POLICY_PATHS);
      const caps = byPath.get(path) ?? new Set<Cap>();
      if (this.r.chance(0.08)) caps.add('deny');
      else for (let j = this.r.int(1, 3); j > 0; j--) caps.add(this.r.pick(CAPS));
      byPath.set(path, caps);
    }
    const rules = [...byPath].map(([path, caps]) => ({ path, caps: [...caps].sort() }));
    // Now and then the right to rewrap, which `default` does not grant.
    return this.w.chance(0.15) ? [...rules, REWRAP] : rules;
  }

  private somePolicies(): string[] {
    const out = new Set<string>();
    for (let i = this.r.int(1, 3); i > 0; i--) out.add(this.r.pick(POLICIES));
    if (this.r.chance(0.15)) out.add('default');
    if (this.r.chance(0.07)) out.add('root');
    return [...out].sort();
  }

  private tokenArgs(): TokenArgs {
    const r = this.r;
    const a: TokenArgs = {};
    if (r.chance(0.7)) a.policies = this.somePolicies();
    if (r.chance(0.2)) a.noDefault = true;
    if (r.chance(0.15)) a.numUses = r.int(1, 3);
    if (r.chance(0.45)) a.ttlS = r.pick(TTLS);
    if (r.chance(0.2)) a.explicitMaxTtlS = r.pick(MAX_TTLS);
    if (r.chance(0.1)) a.periodS = r.pick([3, 3600]);
    if (r.chance(0.1)) a.noParent = true;
    return a;
  }

  private roleFields(): RoleFields {
    const r = this.r;
    const f: RoleFields = {};
    if (r.chance(0.85)) f.token_policies = this.somePolicies();
    if (r.chance(0.15)) f.token_no_default_policy = r.chance(0.7);
    if (r.chance(0.2)) f.token_num_uses = r.int(0, 3);
    if (r.chance(0.3)) f.token_ttl = r.pick([2, 3, 4, 60]);
    if (r.chance(0.25)) f.token_max_ttl = r.pick(MAX_TTLS.slice(0, 3));
    if (r.chance(0.25)) f.token_explicit_max_ttl = r.pick(MAX_TTLS.slice(0, 3));
    if (r.chance(0.1)) f.token_period = r.pick([0, 3]);
    if (r.chance(0.2)) f.token_bound_cidrs = r.chance(0.2) ? [] : [r.pick(CIDRS)];
    if (r.chance(0.25)) f.secret_id_num_uses = r.int(0, 3);
    if (r.chance(0.2)) f.secret_id_ttl = r.pick([0, 3, 3600]);
    if (r.chance(0.2)) f.secret_id_bound_cidrs = r.chance(0.2) ? [] : [r.pick(CIDRS)];
    return f;
  }

  private secretArgs(): SecretArgs {
    const r = this.r;
    const a: SecretArgs = {};
    if (r.chance(0.3)) a.numUses = r.int(0, 4);
    if (r.chance(0.25)) a.ttlS = r.pick([0, 2, 3600, 7200]);
    if (r.chance(0.2)) a.cidrList = [r.pick(CIDRS)];
    if (r.chance(0.2)) a.tokenBoundCidrs = [r.pick(CIDRS)];
    return a;
  }
}
