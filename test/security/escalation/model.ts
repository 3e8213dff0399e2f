/**
 * The model: what the cluster should hold after a history of requests — policies, tokens (tree,
 * uses, expiry bounds, CIDRs, revocations), AppRole roles and secret IDs, KV paths written —
 * built only from acknowledged (2xx) answers, so it follows the server even past a violation.
 * Time is the client's: expiry is bounded from the request's start and end, with slack.
 */
import { type Cap, ModelAcl, type Rule } from './acl';
import { is2xx, kvPayload, type Step, type TokenArgs } from './history';
import {
  approleMaxS,
  DEFAULT_RULES,
  loginCidrs,
  type ModelRole,
  type ModelSecret,
  type ModelToken,
  NO_ROLE,
  ROUND_MS,
  SLACK_MS,
  SYSTEM_MAX_S,
} from './state';

/** The model state, advanced one step at a time with `apply`. */
export class Model {
  readonly policies = new Map<string, Rule[]>([['default', DEFAULT_RULES]]);
  readonly tokens = new Map<string, ModelToken>();
  readonly roles = new Map<string, ModelRole>();
  readonly secrets = new Map<string, ModelSecret>();
  readonly kv = new Set<string>();
  /**
   * KV path → what a read of it may answer now (`data.data` as JSON): one value after an
   * acknowledged write, more after writes without a verdict (which may or may not have applied).
   */
  readonly kvData = new Map<string, Set<string>>();
  /** Wrapping token label → the step whose answer it wraps (its call, caller and time). */
  readonly wrapped = new Map<string, Step>();
  /** Wrapping token label → its creation TTL, seconds (a rewrap's new token keeps the old one's). */
  readonly wrapTtl = new Map<string, number>();
  /** Wrapping token label of a wrapped KV read → what the read could have answered when wrapped. */
  readonly wrappedKv = new Map<string, Set<string>>();
  /** Wrapping tokens whose unwrap was acknowledged. */
  readonly unwrapped = new Set<string>();
  /** Wrapping tokens spent by an acknowledged rewrap → the wrapping token that replaced them. */
  readonly rewrapped = new Map<string, string>();
  /**
   * Wrapping tokens a request without a verdict (no answer, 5xx) may have spent or revoked: the
   * model cannot say they are still good.
   */
  readonly uncertain = new Set<string>();
  /** Bumped by every policy change: a wrapped answer is checked at unwrap only if none came between. */
  policyEpoch = 0;
  private readonly wrappedEpoch = new Map<string, number>();
  approleMounted = false;

  constructor() {
    const inf = Number.POSITIVE_INFINITY;
    this.tokens.set('root', {
      label: 'root',
      policies: ['root'],
      parent: null,
      source: 'init',
      numUses: 0,
      used: 0,
      expiry: inf,
      expiryLow: inf,
      maxEnd: inf,
      cidrs: [],
    });
  }

  isRoot(label: string): boolean {
    return this.tokens.get(label)?.policies.includes('root') ?? false;
  }

  /** The ACL of a token (of its policies as they are now). */
  acl(label: string): ModelAcl {
    const names = this.tokens.get(label)?.policies ?? [];
    return new ModelAcl(names.flatMap((n) => this.policies.get(n) ?? []));
  }

  /** Whether `label` may do what `need` asks (root may do anything). */
  allows(label: string, need: { path: string; caps: readonly Cap[] }): boolean {
    return this.isRoot(label) || this.acl(label).allows(need.path, need.caps);
  }

  /** Root, or `sudo` granted on exactly `path`. */
  sudo(label: string, path: string): boolean {
    return this.allows(label, { path, caps: ['sudo'] });
  }

  /** Why `label` is certainly dead at time `t` (revoked, spent, or expired with slack), else null. */
  deadReason(label: string, t: number): string | null {
    const seen = new Set<string>();
    for (let at = this.tokens.get(label); at && !seen.has(at.label); ) {
      seen.add(at.label);
      const who = at.label === label ? '' : `its ancestor ${at.label} `;
      if (at.revokedAt !== undefined && at.revokedAt < t) return `${who}revoked at ${at.revokedAt}`;
      if (at.spentAt !== undefined && at.spentAt < t) return `${who}spent its ${at.numUses} uses`;
      const expiry = Math.min(at.expiry, at.maxEnd);
      if (t > expiry + SLACK_MS) return `${who}expired ${t - expiry} ms before`;
      at = at.parent === null ? undefined : this.tokens.get(at.parent);
    }
    return null;
  }

  /** Whether `label` is certainly usable at `t`: alive with margin, unlimited uses, ancestors too. */
  surelyAlive(label: string, t: number): boolean {
    const tk = this.tokens.get(label);
    if (!tk || tk.numUses > 0) return false;
    for (let at: ModelToken | undefined = tk, hops = 0; at; hops++) {
      if (hops > 64 || at.revokedAt !== undefined || t + SLACK_MS >= at.expiryLow) return false;
      at = at.parent === null ? undefined : this.tokens.get(at.parent);
    }
    return true;
  }

  /** Why a secret ID is certainly unusable at `t`, else null. */
  secretDead(label: string, t: number): string | null {
    const s = this.secrets.get(label);
    if (!s) return 'never issued';
    if (s.deadAt !== undefined && s.deadAt < t) return 'destroyed with its mount';
    if (s.numUses > 0 && s.used >= s.numUses) return `its ${s.numUses} uses were spent`;
    if (t > s.expiresAt + SLACK_MS) return `expired ${t - s.expiresAt} ms before`;
    return null;
  }

  /** The role that owns `roleId` now. */
  roleOwning(roleId: string): ModelRole | undefined {
    return [...this.roles.values()].find((r) => r.roleId === roleId);
  }

  /** The wrapping token an unwrap, rewrap or lookup names (the body's, else the caller's own). */
  static wrapTarget(s: Step): string | null {
    const c = s.call;
    return c.kind === 'unwrap' || c.kind === 'rewrap' || c.kind === 'wrap-lookup'
      ? (c.token ?? s.actor)
      : null;
  }

  /**
   * Whether wrapping token `label` is certainly good at `t`: wrapping a known answer, neither
   * unwrapped, rewrapped, revoked nor possibly spent, and its TTL not near its end.
   */
  wrappingSurelyLive(label: string, t: number): boolean {
    const tk = this.tokens.get(label);
    return (
      tk?.source === 'wrap' &&
      this.wrapped.has(label) &&
      !this.unwrapped.has(label) &&
      !this.rewrapped.has(label) &&
      !this.uncertain.has(label) &&
      tk.revokedAt === undefined &&
      tk.spentAt === undefined &&
      t + SLACK_MS < tk.expiryLow
    );
  }

  /**
   * The step a wrapped answer came from, as if answered in the clear with what the unwrap
   * revealed — null when the wrapping token is unknown, or policies changed since (the rules of
   * the wrapped call would then be judged against policies it did not run under).
   */
  revealed(unwrap: Step): Step | null {
    const label = Model.wrapTarget(unwrap);
    const w = label === null ? undefined : this.wrapped.get(label);
    if (!label || !w || this.wrappedEpoch.get(label) !== this.policyEpoch || !unwrap.out) return null;
    return { ...w, out: unwrap.out };
  }

  /** Advances the model by one recorded step. */
  apply(s: Step): void {
    const actor = s.actor === null ? undefined : this.tokens.get(s.actor);
    // A 2xx, or a 400 (a handler's answer, after the ACL check and the use), spent a use; a 403
    // or 404 may have come before it (ACL denied, no such route), so those are not counted. A
    // wrapping token unwrapping itself is spent by the unwrap (below), whatever the answer; one
    // unwrapping another is refused 400 without being spent (sys-wrapping.ts: it "must not be
    // spent to open another").
    // sys/wrapping/lookup needs no token: the one sent is not checked, nor is a use counted.
    const selfUnwrap = s.call.kind === 'unwrap' && (s.call.token ?? s.actor) === s.actor;
    const wrapperOpeningAnother = s.call.kind === 'unwrap' && actor?.source === 'wrap' && !selfUnwrap;
    if (
      actor &&
      s.call.kind !== 'wrap-lookup' &&
      !selfUnwrap &&
      !wrapperOpeningAnother &&
      actor.numUses > 0 &&
      (is2xx(s.status) || s.status === 400) &&
      ++actor.used >= actor.numUses
    )
      actor.spentAt ??= s.end;
    if (!is2xx(s.status)) {
      // A renewal without a verdict may have moved the expiry anywhere; an unwrap, rewrap or
      // revocation may have spent the wrapping token it names; a KV write may have applied.
      if (s.status === 0 || s.status >= 500) this.noVerdict(s);
      return;
    }
    const c = s.call;
    if (s.out?.wrapping) {
      if (c.kind === 'rewrap') this.rewrap(s);
      else this.wrap(s);
      return;
    }
    switch (c.kind) {
      case 'policy-write':
        this.policies.set(c.name, c.rules);
        this.policyEpoch++;
        break;
      case 'policy-delete':
        this.policies.delete(c.name);
        this.policyEpoch++;
        break;
      case 'create':
        if (actor) this.created(s, c.orphanPath, c.args, actor);
        break;
      case 'unwrap':
        this.unwrap(s);
        break;
      case 'login':
        this.login(s);
        break;
      case 'role-write': {
        const prev = this.roles.get(c.role);
        const fields = { ...(prev?.fields ?? NO_ROLE), ...c.fields };
        this.roles.set(c.role, { name: c.role, roleId: prev?.roleId, fields, writer: s.actor ?? '' });
        break;
      }
      case 'role-id-read':
      case 'role-id-write': {
        const role = this.roles.get(c.role);
        const id = c.kind === 'role-id-write' ? c.roleId : s.out?.roleId;
        if (role && id !== undefined) role.roleId = id;
        break;
      }
      case 'secret-id':
        this.secretIssued(s);
        break;
      case 'revoke':
      case 'revoke-accessor':
        this.revoke(c.token, s.end, true);
        break;
      case 'revoke-orphan':
        this.revoke(c.token, s.end, false);
        break;
      case 'revoke-self':
        if (s.actor) this.revoke(s.actor, s.end, true);
        break;
      case 'renew':
      case 'renew-accessor':
      case 'renew-self': {
        const target = this.tokens.get(c.kind === 'renew-self' ? (s.actor ?? '') : c.token);
        if (target && s.out?.leaseS !== undefined && s.out.leaseS > 0) {
          target.expiryLow = s.start + s.out.leaseS * 1000 - ROUND_MS;
          target.expiry = s.end + s.out.leaseS * 1000 + ROUND_MS;
        }
        break;
      }
      case 'kv-write':
        this.kv.add(c.path);
        this.kvData.set(c.path, new Set([JSON.stringify(kvPayload(c.value))]));
        break;
      case 'auth-enable':
        if (c.mount === 'approle') this.approleMounted = true;
        break;
      case 'auth-disable':
        if (c.mount === 'approle' && this.approleMounted) this.disableAppRole(s.end);
        break;
      default:
        break;
    }
  }

  /**
   * A token from auth/token/create*. Bound to its parent's CIDRs, orphan or not, and an orphan
   * of a parent without sudo lives no longer than the parent may: leaderway's rules (3c, 4b in
   * docs/security-model.md), stricter than OpenBao, which does neither for orphans.
   */
  private created(s: Step, orphanPath: boolean, a: TokenArgs, parent: ModelToken): void {
    const t = s.out?.token;
    if (!t) return;
    const inf = Number.POSITIVE_INFINITY;
    const explicit = (a.explicitMaxTtlS ?? 0) > 0 ? (a.explicitMaxTtlS as number) : inf;
    const periodic = (a.periodS ?? 0) > 0;
    const life = t.policies.includes('root') || periodic ? explicit : Math.min(SYSTEM_MAX_S, explicit);
    let maxEnd = s.end + life * 1000 + ROUND_MS;
    const sudo = this.sudo(parent.label, `auth/token/${orphanPath ? 'create-orphan' : 'create'}`);
    if (t.orphan && !sudo) maxEnd = Math.min(maxEnd, parent.maxEnd);
    this.add(s, {
      parent: t.orphan ? null : parent.label,
      source: 'token',
      maxEnd,
      cidrs: [...parent.cidrs],
    });
  }

  private secretIssued(s: Step): void {
    const c = s.call;
    if (c.kind !== 'secret-id' || !s.out?.secret) return;
    const { label, numUses, ttlS } = s.out.secret;
    this.secrets.set(label, {
      label,
      role: c.role,
      numUses,
      used: 0,
      expiresAt: ttlS > 0 ? s.end + ttlS * 1000 + ROUND_MS : Number.POSITIVE_INFINITY,
      cidrList: c.args.cidrList ?? [],
      tokenBoundCidrs: c.args.tokenBoundCidrs ?? [],
    });
  }

  /** A wrapped answer: a one-use orphan wrapping token, and the step it stands for. */
  private wrap(s: Step): void {
    const w = s.out?.wrapping;
    if (!w) return;
    this.wrapped.set(w.label, s);
    this.wrappedEpoch.set(w.label, this.policyEpoch);
    this.wrapTtl.set(w.label, w.leaseS);
    if (s.call.kind === 'kv-read') this.wrappedKv.set(w.label, new Set(this.kvData.get(s.call.path)));
    this.add(
      { ...s, out: { token: w } },
      { parent: null, source: 'wrap', maxEnd: Number.POSITIVE_INFINITY, cidrs: [] },
    );
  }

  /**
   * An acknowledged rewrap spends the wrapping token it names and hands out a new one, holding
   * the same answer (of the same call, caller and time) with the same creation TTL.
   */
  private rewrap(s: Step): void {
    const old = Model.wrapTarget(s);
    const w = s.out?.wrapping;
    const tk = old === null ? undefined : this.tokens.get(old);
    if (!old || !w || !tk) return;
    tk.spentAt ??= s.end;
    tk.revokedAt ??= s.end;
    this.rewrapped.set(old, w.label);
    const from = this.wrapped.get(old);
    if (!from) return;
    this.wrapped.set(w.label, from);
    this.wrappedEpoch.set(w.label, this.wrappedEpoch.get(old) ?? -1);
    this.wrapTtl.set(w.label, w.leaseS);
    const kv = this.wrappedKv.get(old);
    if (kv) this.wrappedKv.set(w.label, kv);
    this.add(
      { ...s, out: { token: w } },
      { parent: null, source: 'wrap', maxEnd: Number.POSITIVE_INFINITY, cidrs: [] },
    );
  }

  /** An acknowledged unwrap spends the wrapping token and reveals the wrapped answer. */
  private unwrap(s: Step): void {
    const label = Model.wrapTarget(s);
    const tk = label === null ? undefined : this.tokens.get(label);
    if (!label || !tk) return;
    tk.spentAt ??= s.end;
    tk.revokedAt ??= s.end;
    this.unwrapped.add(label);
    const w = this.wrapped.get(label);
    // What the wrapped call would have done in the clear, at its own time (no use counted twice).
    if (w && s.out) this.applyRevealed({ ...w, out: s.out });
  }

  private applyRevealed(s: Step): void {
    const c = s.call;
    const actor = s.actor === null ? undefined : this.tokens.get(s.actor);
    if (c.kind === 'create' && actor) this.created(s, c.orphanPath, c.args, actor);
    if (c.kind === 'secret-id') this.secretIssued(s);
  }

  private login(s: Step): void {
    if (s.call.kind !== 'login' || !s.out?.token) return;
    const role = this.roleOwning(s.call.roleId);
    const secret = this.secrets.get(s.call.secret);
    if (secret) secret.used++;
    const f = role?.fields ?? NO_ROLE;
    this.add(s, {
      parent: null,
      source: 'approle',
      maxEnd: s.end + approleMaxS(f) * 1000 + ROUND_MS,
      cidrs: loginCidrs(secret?.tokenBoundCidrs ?? [], f.token_bound_cidrs),
    });
  }

  private add(s: Step, o: Pick<ModelToken, 'parent' | 'source' | 'maxEnd' | 'cidrs'>): void {
    const t = s.out?.token;
    if (!t) return;
    const inf = Number.POSITIVE_INFINITY;
    this.tokens.set(t.label, {
      label: t.label,
      policies: [...t.policies],
      numUses: t.numUses,
      used: 0,
      expiry: t.leaseS > 0 ? s.end + t.leaseS * 1000 + ROUND_MS : inf,
      expiryLow: t.leaseS > 0 ? s.start + t.leaseS * 1000 - ROUND_MS : inf,
      ...o,
    });
  }

  private revoke(label: string, at: number, tree: boolean): void {
    const tk = this.tokens.get(label);
    if (!tk) return;
    tk.revokedAt ??= at;
    for (const child of this.tokens.values()) {
      if (child.parent !== label) continue;
      if (tree) this.revoke(child.label, at, true);
      else child.parent = null;
    }
  }

  /**
   * Disabling the AppRole mount revokes what it issued — its logins' tokens, and the wrapping
   * tokens of secret IDs generated wrapped, whose creation path is under it (sys-auth.ts tidies
   * every token created under `auth/approle`) — and drops its roles and secret IDs.
   */
  private disableAppRole(at: number): void {
    this.approleMounted = false;
    for (const t of this.tokens.values()) if (t.source === 'approle') this.revoke(t.label, at, true);
    for (const [label, w] of this.wrapped) if (w.call.kind === 'secret-id') this.revoke(label, at, true);
    for (const sec of this.secrets.values()) sec.deadAt ??= at;
    this.roles.clear();
  }

  /** A request without a verdict: whatever it may have done, the model stops claiming otherwise. */
  private noVerdict(s: Step): void {
    const c = s.call;
    for (const label of [Model.wrapTarget(s), 'token' in c ? (c.token ?? null) : null])
      if (label !== null && this.tokens.get(label)?.source === 'wrap') this.uncertain.add(label);
    if (c.kind === 'kv-write') {
      const now = this.kvData.get(c.path) ?? new Set<string>();
      now.add(JSON.stringify(kvPayload(c.value)));
      this.kvData.set(c.path, now);
    }
    this.forgetExpiry(s);
  }

  private forgetExpiry(s: Step): void {
    const c = s.call;
    if (c.kind !== 'renew' && c.kind !== 'renew-accessor' && c.kind !== 'renew-self') return;
    const target = this.tokens.get(c.kind === 'renew-self' ? (s.actor ?? '') : c.token);
    if (!target) return;
    target.expiry = Number.POSITIVE_INFINITY;
    target.expiryLow = Number.NEGATIVE_INFINITY;
  }
}
