/**
 * The token store. A token is never stored: its entry lives at `auth/token/id/<hmac>` (an HMAC
 * under the keyring's key, so Redis holds neither the token nor a plain hash of it), and the
 * entry's own copy of the HMAC is compared in constant time. Beside it:
 *   `auth/token/accessor/<hmac(accessor)>` → the token's HMAC (lookup and revoke by accessor);
 *   `auth/token/parent/<parent hmac>/<child hmac>` → the tree, so revoking a parent revokes its
 *   children (unless they are orphaned first, `revoke-orphan`).
 *
 * Validity is decided on every request from storage, never from a cache: a token is accepted
 * only if its entry exists, has not expired, every ancestor up its tree exists and has not
 * expired (so a revoked or expired parent disables its children at once, before the tree is
 * deleted), its use count is not spent and the client address is inside its bound CIDRs. All
 * writes go through the active node's fenced storage.
 */
import { randomBytes, timingSafeEqual } from 'node:crypto';
import { LwError, MESSAGES } from '../../shared/errors';
import { formatDuration } from '../api/duration';
import { NO_PREFETCH, type Prefetch } from '../barrier/config-stamp';
import type { JsonWriteOp, SecureStorage } from '../barrier/secure-storage';
import { CUBBYHOLE_ROOT, cubbyholeDeletes, cubbyholeEntries, cubbyholeOf } from '../kv/cubbyhole';
import { KeyedMutex } from '../kv/keyed-mutex';
import { cidrsContain } from './cidr';

const ENTRY = 'auth/token/id/';
const ACCESSOR = 'auth/token/accessor/';
const CHILDREN = 'auth/token/parent/';
const TOKEN_PREFIX = 'hvs.';
/** A spent wrapping token's mark, kept until the token would have expired (see spendWrapping). */
const SPENT = 'sys/wrapping/spent/';

/**
 * The policy of response-wrapping tokens, and only of them: no token can be created with it, no
 * policy of that name can be written, and it grants nothing in an ACL. A wrapping token is good
 * for `sys/wrapping/unwrap` (and as the target of lookup and rewrap), nothing else.
 */
export const WRAPPING_POLICY = 'response-wrapping';
/** Where a wrapping token's cubbyhole holds the wrapped response, as OpenBao. */
const WRAPPED_RESPONSE = 'response';

/** Upstream's system default and maximum token TTL (768h), for tokens without the root policy. */
export const DEFAULT_TTL_S = 768 * 3600;
export const MAX_TTL_S = 768 * 3600;
/** Deepest token tree walked when checking ancestors (deeper trees are refused at creation). */
const MAX_DEPTH = 32;

/** A stored token entry. Fields after `meta` are absent on root tokens written by 0.1.0's init. */
export interface TokenEntry {
  hash: string;
  accessor: string;
  policies: string[];
  display_name: string;
  /** Unix seconds. */
  creation_time: number;
  meta: Record<string, string> | null;
  /** The TTL it was created with, seconds (0: none). */
  creation_ttl?: number;
  /** When it expires, ms since the epoch (0: never). */
  expire_time?: number;
  /** No renewal goes past this, ms since the epoch (0: no cap). */
  max_expire?: number;
  explicit_max_ttl?: number;
  /** Periodic tokens renew to this many seconds, indefinitely (as asked; see period_cap). */
  period?: number;
  /**
   * The most one issuance or renewal of a periodic token grants, seconds: the smallest of the
   * system's max TTL, the issuing role's and mount's max and explicit_max_ttl (OpenBao's
   * CalculateTTL). Absent on entries written before it: the system's max.
   */
  period_cap?: number;
  renewable?: boolean;
  /** Uses left (0: unlimited). */
  num_uses?: number;
  /** The parent's HMAC ('' or absent: an orphan). */
  parent?: string;
  /** Where it was created: auth/token/create, auth/approle/login, auth/token/root. */
  path?: string;
  /** The client address must be in one of these (empty: anywhere). */
  bound_cidrs?: string[];
  /** Depth in its tree (0 for orphans). */
  depth?: number;
}

/** What a caller asks for when creating a token. */
export interface TokenSpec {
  policies: string[];
  parent: TokenEntry | null;
  displayName: string;
  meta: Record<string, string> | null;
  ttlS: number;
  explicitMaxTtlS: number;
  /**
   * A cap besides explicit_max_ttl (an auth role's `token_max_ttl`, the mount's
   * `max_lease_ttl`); 0: none. It bounds a non-periodic token's lifetime, and a periodic token's
   * period at each issuance and renewal (not its lifetime), as upstream's CalculateTTL.
   */
  maxTtlS?: number;
  periodS: number;
  renewable: boolean;
  numUses: number;
  path: string;
  boundCidrs: string[];
}

/** Creates a new random token. */
export function newToken(): string {
  return TOKEN_PREFIX + randomBytes(24).toString('base64url');
}

/** The storage entry for the root token created at init. */
export function rootTokenEntry(storage: SecureStorage, token: string): { path: string; value: TokenEntry } {
  const hash = storage.barrier.hmac(token);
  return {
    path: ENTRY + hash,
    value: {
      hash,
      accessor: randomBytes(12).toString('base64url'),
      policies: ['root'],
      display_name: 'root',
      creation_time: Math.floor(Date.now() / 1000),
      meta: null,
      path: 'auth/token/root',
      renewable: false,
    },
  };
}

/** Whether an entry is a response-wrapping token's. */
export function isWrapping(entry: TokenEntry): boolean {
  return entry.policies.length === 1 && entry.policies[0] === WRAPPING_POLICY;
}

/** The answer to a wrapping token that is not (or no longer) good, as OpenBao words it. */
export const invalidWrapping = () => new LwError('LW_ERR_BAD_REQUEST', MESSAGES.invalidWrappingToken);

/** Whether an entry carries the root policy. */
export function isRoot(entry: TokenEntry): boolean {
  return entry.policies.includes('root');
}

function expired(e: TokenEntry, now: number): boolean {
  return (e.expire_time ?? 0) > 0 && (e.expire_time as number) <= now;
}

/** Remaining TTL in seconds, rounded (0 for tokens that never expire). */
export function remainingTtl(e: TokenEntry, now = Date.now()): number {
  const exp = e.expire_time ?? 0;
  return exp === 0 ? 0 : Math.max(0, Math.round((exp - now) / 1000));
}

const denied = () => new LwError('LW_ERR_PERMISSION_DENIED', MESSAGES.permissionDenied);

/** A new token, its entry, and the warnings its reply carries. */
export interface Created {
  token: string;
  entry: TokenEntry;
  warnings: string[];
}

/** Absurd tokens are rejected before hashing; the length limit is not secret. */
const usableToken = (token: string | undefined): token is string =>
  token !== undefined && token !== '' && token.length <= 256;

/** The token store over one storage view. */
export class TokenStore {
  private readonly uses = new KeyedMutex();

  private entryAt(s: SecureStorage, hash: string): Promise<TokenEntry | null> {
    return s.get<TokenEntry>(ENTRY + hash);
  }

  /**
   * What a standby reads with its config stamp for a request by `token`: the token's entry (none
   * for a token no entry can have), and its HMAC, so `find` on the view does not compute it again
   * (config-stamp.ts `standbyView`).
   */
  prefetch(s: SecureStorage, token: string | undefined): Prefetch {
    if (!usableToken(token)) return NO_PREFETCH;
    const hash = s.hmac(token);
    return { paths: [ENTRY + hash], hmacs: new Map([[token, hash]]) };
  }

  /** The entry of a token, without any validity check (null when unknown). */
  async find(s: SecureStorage, token: string | undefined): Promise<TokenEntry | null> {
    if (!usableToken(token)) return null;
    const hash = s.hmac(token);
    const entry = await this.entryAt(s, hash);
    const a = Buffer.from(hash, 'hex');
    const b = Buffer.from(entry?.hash ?? '00'.repeat(32), 'hex');
    if (!entry || a.length !== b.length || !timingSafeEqual(a, b)) return null;
    return entry;
  }

  /** The entry for an accessor (null when unknown). */
  async findByAccessor(s: SecureStorage, accessor: unknown): Promise<TokenEntry | null> {
    if (typeof accessor !== 'string' || accessor === '' || accessor.length > 128) return null;
    const ref = await s.get<{ hash: string }>(ACCESSOR + s.barrier.hmac(`accessor:${accessor}`));
    return ref ? this.entryAt(s, ref.hash) : null;
  }

  /**
   * Whether `e` may be used now from `clientAddr`: not expired, every ancestor alive, and the
   * address inside the bound CIDRs of the token and of every ancestor (a child is never usable
   * where its parent is not). `clientAddr` null: the token is the target of a request (revoke,
   * lookup), not its caller, so no address applies.
   */
  async valid(
    s: SecureStorage,
    e: TokenEntry,
    clientAddr: string | null,
    now = Date.now(),
  ): Promise<boolean> {
    const boundOut = (t: TokenEntry) =>
      clientAddr !== null &&
      (t.bound_cidrs?.length ?? 0) > 0 &&
      !cidrsContain(t.bound_cidrs ?? [], clientAddr);
    if (expired(e, now) || boundOut(e)) return false;
    let parent = e.parent;
    for (let depth = 0; parent; depth++) {
      if (depth >= MAX_DEPTH) return false;
      const p = await this.entryAt(s, parent);
      if (!p || expired(p, now) || boundOut(p)) return false;
      parent = p.parent;
    }
    return true;
  }

  /** The entry of a live token named in a request's body (a target, from any address); null otherwise. */
  async alive(s: SecureStorage, token: string | undefined): Promise<TokenEntry | null> {
    const e = await this.find(s, token);
    return e && (await this.valid(s, e, null)) ? e : null;
  }

  /** The entry of a live token by accessor (null when unknown, revoked, expired or orphaned by an expiry). */
  async aliveByAccessor(s: SecureStorage, accessor: unknown): Promise<TokenEntry | null> {
    const e = await this.findByAccessor(s, accessor);
    return e && (await this.valid(s, e, null)) ? e : null;
  }

  /** The entry of a valid token; 403 permission denied otherwise. */
  async authenticate(s: SecureStorage, token: string | undefined, clientAddr: string): Promise<TokenEntry> {
    const e = await this.find(s, token);
    if (!e || !(await this.valid(s, e, clientAddr))) throw denied();
    return e;
  }

  /**
   * Counts one use of a limited-use token (`num_uses`). The request that spends the last use
   * is still served; the token is revoked at once, so no later request can use it.
   */
  use(s: SecureStorage, e: TokenEntry): Promise<void> {
    if (!e.num_uses) return Promise.resolve();
    return this.uses.run(e.hash, async () => {
      const current = await this.entryAt(s, e.hash);
      if (!current?.num_uses) throw denied();
      if (current.num_uses === 1) {
        await this.revokeLocked(s, current, false);
        return;
      }
      await s.put(ENTRY + e.hash, { ...current, num_uses: current.num_uses - 1 });
    });
  }

  /**
   * Creates the token an auth method's login issues (OpenBao's LoginCreateToken): the one place
   * every auth method's tokens pass, so no method, present or future, issues a root token.
   */
  async createForLogin(s: SecureStorage, spec: TokenSpec): Promise<Created> {
    if (spec.policies.includes('root')) throw new LwError('LW_ERR_BAD_REQUEST', MESSAGES.loginRoot);
    return this.create(s, spec);
  }

  /**
   * Creates a token; resolves the token, its entry and the warnings its reply carries (a period
   * capped). No token is created with the wrapping policy.
   */
  async create(s: SecureStorage, spec: TokenSpec): Promise<Created> {
    if (spec.policies.includes(WRAPPING_POLICY)) {
      throw new LwError(
        'LW_ERR_BAD_REQUEST',
        `the "${WRAPPING_POLICY}" policy is reserved for wrapping tokens`,
      );
    }
    const { token, entry, ops } = this.build(s, spec);
    await s.batch(ops);
    const cap = entry.period_cap ?? 0;
    const warnings =
      spec.periodS > cap && cap > 0
        ? [
            `period of "${formatDuration(spec.periodS)}" exceeded the effective max_ttl of "${formatDuration(cap)}"; period value is capped accordingly`,
          ]
        : [];
    return { token, entry, warnings };
  }

  /** A new token's entry and the writes that store it (entry, accessor, place in its tree). */
  private build(s: SecureStorage, spec: TokenSpec): { token: string; entry: TokenEntry; ops: JsonWriteOp[] } {
    const now = Date.now();
    const root = spec.policies.includes('root');
    const depth = spec.parent ? (spec.parent.depth ?? 0) + 1 : 0;
    if (depth > MAX_DEPTH) throw new LwError('LW_ERR_BAD_REQUEST', 'token tree is too deep');
    // Others get a TTL capped by the system's max (root-policy tokens may live forever), the
    // role's and mount's max and explicit_max_ttl. A periodic token renews without end, each
    // issuance and renewal capped by the same (the system's max for root too); its lifetime only
    // by explicit_max_ttl.
    const periodic = spec.periodS > 0;
    let maxS = root && !periodic ? 0 : MAX_TTL_S;
    const caps = [spec.explicitMaxTtlS, spec.maxTtlS ?? 0];
    for (const cap of caps) if (cap > 0) maxS = maxS === 0 ? cap : Math.min(maxS, cap);
    let ttlS = periodic ? spec.periodS : spec.ttlS || (root ? 0 : DEFAULT_TTL_S);
    if (maxS > 0 && (ttlS === 0 || ttlS > maxS)) ttlS = maxS;
    const token = newToken();
    const hash = s.barrier.hmac(token);
    const entry: TokenEntry = {
      hash,
      accessor: randomBytes(12).toString('base64url'),
      policies: spec.policies,
      display_name: spec.displayName,
      creation_time: Math.floor(now / 1000),
      meta: spec.meta,
      creation_ttl: ttlS,
      expire_time: ttlS > 0 ? now + ttlS * 1000 : 0,
      max_expire:
        spec.periodS > 0
          ? spec.explicitMaxTtlS > 0
            ? now + spec.explicitMaxTtlS * 1000
            : 0
          : maxS > 0
            ? now + maxS * 1000
            : 0,
      explicit_max_ttl: spec.explicitMaxTtlS,
      period: spec.periodS,
      ...(periodic ? { period_cap: maxS } : {}),
      renewable: spec.periodS > 0 || (spec.renewable && ttlS > 0),
      num_uses: spec.numUses,
      parent: spec.parent?.hash ?? '',
      path: spec.path,
      bound_cidrs: spec.boundCidrs,
      depth,
    };
    const ops: JsonWriteOp[] = [
      { op: 'put', path: ENTRY + hash, value: entry },
      { op: 'put', path: ACCESSOR + s.barrier.hmac(`accessor:${entry.accessor}`), value: { hash } },
    ];
    if (spec.parent) ops.push({ op: 'put', path: `${CHILDREN}${spec.parent.hash}/${hash}`, value: {} });
    return { token, entry, ops };
  }

  /**
   * Creates a response-wrapping token (OpenBao's shape: the wrapping policy alone, one use, an
   * orphan, not renewable, its TTL also its explicit max, `path` the creation path) holding
   * `response` in its cubbyhole — all in one atomic write, so no wrapping token exists without
   * its response.
   */
  async createWrapping(
    s: SecureStorage,
    ttlS: number,
    creationPath: string,
    response: unknown,
  ): Promise<{ token: string; entry: TokenEntry }> {
    const { token, entry, ops } = this.buildWrapping(s, ttlS, creationPath, response);
    await s.batch(ops);
    return { token, entry };
  }

  private buildWrapping(s: SecureStorage, ttlS: number, creationPath: string, response: unknown) {
    const built = this.build(s, {
      policies: [WRAPPING_POLICY],
      parent: null,
      displayName: '',
      meta: null,
      ttlS,
      explicitMaxTtlS: ttlS,
      periodS: 0,
      renewable: false,
      numUses: 1,
      path: creationPath,
      boundCidrs: [],
    });
    built.ops.push({ op: 'put', path: cubbyholeOf(built.entry.hash) + WRAPPED_RESPONSE, value: response });
    return built;
  }

  /** The entry of a live wrapping token; 400 "wrapping token is not valid" otherwise. */
  async wrappingEntry(s: SecureStorage, token: unknown): Promise<TokenEntry> {
    const e = typeof token === 'string' ? await this.alive(s, token) : null;
    if (!e || !isWrapping(e)) throw invalidWrapping();
    return e;
  }

  /**
   * Spends a wrapping token: resolves the response it holds, having deleted the token and its
   * cubbyhole in one atomic write — or throws 400 if it is not a live wrapping token, or was spent
   * already. `rewrap`: a new wrapping token for the same response and creation path, with the
   * spent one's TTL, created in that same write.
   *
   * Single use does not rest on this node's lock alone, nor on fencing: the write also creates a
   * mark for the token only if it is absent (`ifAbsent`), so of two spends that both read the
   * token before either wrote, one writes and the other is refused, whichever node they ran on.
   */
  async spendWrapping(
    s: SecureStorage,
    token: unknown,
    rewrap = false,
  ): Promise<{ entry: TokenEntry; response: unknown; next: { token: string; entry: TokenEntry } | null }> {
    const first = await this.wrappingEntry(s, token);
    return this.uses.run(first.hash, async () => {
      const e = await this.wrappingEntry(s, token);
      const response = await s.get<unknown>(cubbyholeOf(e.hash) + WRAPPED_RESPONSE);
      if (response === null) throw invalidWrapping();
      const ops: JsonWriteOp[] = [
        ...this.deletes(s, e),
        ...(await cubbyholeDeletes(s, e.hash)),
        { op: 'put', path: SPENT + e.hash, value: { expire_time: e.expire_time ?? 0 } },
      ];
      const next = rewrap ? this.buildWrapping(s, e.creation_ttl ?? 0, e.path ?? '', response) : null;
      if (next) ops.push(...next.ops);
      if (!(await s.batch(ops, { ifAbsent: SPENT + e.hash }))) throw invalidWrapping();
      return { entry: e, response, next: next && { token: next.token, entry: next.entry } };
    });
  }

  /**
   * Extends a token's life by `incrementS` (its creation TTL when 0; its period for periodic
   * tokens), never past its max. Throws 400 when it is not renewable.
   */
  async renew(s: SecureStorage, e: TokenEntry, incrementS: number): Promise<TokenEntry> {
    if (!e.renewable) throw new LwError('LW_ERR_BAD_REQUEST', 'lease is not renewable');
    // Under the uses lock and on the entry as stored now: a renewal moves the expiry and nothing
    // else. Writing back the entry the request started with would give a limited-use token its
    // counted use back — or, on its last use, bring it back after its revocation.
    return this.uses.run(e.hash, async () => {
      const current = await this.entryAt(s, e.hash);
      if (!current) throw new LwError('LW_ERR_BAD_REQUEST', 'token not found');
      const now = Date.now();
      const byS = current.period
        ? Math.min(current.period, current.period_cap || MAX_TTL_S)
        : incrementS || current.creation_ttl || DEFAULT_TTL_S;
      let expire = now + byS * 1000;
      if (current.max_expire && expire > current.max_expire) expire = current.max_expire;
      const next = { ...current, expire_time: expire };
      await s.put(ENTRY + e.hash, next);
      return next;
    });
  }

  /**
   * Revokes a token and, unless `orphanChildren`, its whole tree (children first). With
   * `orphanChildren` its children stay valid as orphans.
   */
  async revoke(s: SecureStorage, e: TokenEntry, orphanChildren: boolean): Promise<void> {
    // Under the token's uses lock, like every read-modify-write of its entry (use, renew): a
    // renewal that read the entry before this delete would otherwise write it back, alive.
    await this.uses.run(e.hash, () => this.revokeLocked(s, e, orphanChildren));
  }

  /** `revoke`, for a caller that already holds `e`'s uses lock. */
  private async revokeLocked(s: SecureStorage, e: TokenEntry, orphanChildren: boolean): Promise<void> {
    for (const child of await s.list(`${CHILDREN}${e.hash}/`)) {
      const c = await this.entryAt(s, child);
      if (c && orphanChildren) {
        // Re-read under the child's lock: a child that revoked itself meanwhile stays revoked.
        await this.uses.run(c.hash, async () => {
          const current = await this.entryAt(s, c.hash);
          if (current) await s.put(ENTRY + c.hash, { ...current, parent: '', depth: 0 });
        });
      } else if (c) await this.revoke(s, c, false);
      await s.delete(`${CHILDREN}${e.hash}/${child}`);
    }
    // The token and its cubbyhole go together.
    await s.batch([...this.deletes(s, e), ...(await cubbyholeDeletes(s, e.hash))]);
  }

  /** The deletes of a token's entry, accessor and place in its parent's tree. */
  private deletes(s: SecureStorage, e: TokenEntry): JsonWriteOp[] {
    const ops: JsonWriteOp[] = [
      { op: 'delete', path: ENTRY + e.hash },
      { op: 'delete', path: ACCESSOR + s.barrier.hmac(`accessor:${e.accessor}`) },
    ];
    if (e.parent) ops.push({ op: 'delete', path: `${CHILDREN}${e.parent}/${e.hash}` });
    return ops;
  }

  /** Every token's accessor (for `LIST auth/token/accessors`). */
  async accessors(s: SecureStorage): Promise<string[]> {
    const out: string[] = [];
    for (const hash of await s.list(ENTRY)) {
      const e = await this.entryAt(s, hash);
      if (e) out.push(e.accessor);
    }
    return out.sort();
  }

  /**
   * Deletes expired tokens (with their trees), tokens whose parent is gone, and tokens that
   * `drop` selects (e.g. issued by a disabled auth mount). Resolves how many were revoked.
   */
  async tidy(s: SecureStorage, drop: (e: TokenEntry) => boolean = () => false): Promise<number> {
    const now = Date.now();
    let revoked = 0;
    for (const hash of await s.list(ENTRY)) {
      const e = await this.entryAt(s, hash);
      if (!e) continue;
      const orphaned = e.parent ? !(await this.entryAt(s, e.parent)) : false;
      if (expired(e, now) || orphaned || drop(e)) {
        await this.revoke(s, e, false);
        revoked++;
      }
    }
    await this.tidyWrapping(s, now);
    return revoked;
  }

  /**
   * Deletes spent-wrapping marks past their token's expiry (the token can no longer be valid,
   * spent or not), and cubbyholes whose token is gone (written by the request that spent the
   * token's last use: the token was revoked before the write).
   */
  private async tidyWrapping(s: SecureStorage, now: number): Promise<void> {
    for (const hash of await s.list(SPENT)) {
      const mark = await s.get<{ expire_time: number }>(SPENT + hash);
      if (mark && mark.expire_time > 0 && mark.expire_time <= now) await s.delete(SPENT + hash);
    }
    for (const folder of await s.list(CUBBYHOLE_ROOT)) {
      const hash = folder.replace(/\/$/, '');
      if (!folder.endsWith('/') || (await this.entryAt(s, hash))) continue;
      const gone = await cubbyholeEntries(s, hash);
      if (gone.length > 0) await s.batch(gone.map((path) => ({ op: 'delete', path })));
    }
  }
}
