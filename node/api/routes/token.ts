/**
 * The token store's routes, relative to `auth/token/`, with upstream's fields, response shapes
 * and status codes: create (child, or orphan), lookup / renew / revoke by token, by accessor and
 * for the calling token itself, revoke-orphan, and `LIST accessors` (sudo).
 */
import { LwError } from '../../../shared/errors';
import { decideTokenCreate } from '../../auth/token-create';
import { isRoot, remainingTtl, type TokenEntry } from '../../auth/token-store';
import { parseDurationSeconds } from '../duration';
import { type Context, noContent, ok, type Reply, type Route } from '../route';

const bad = (message: string) => new LwError('LW_ERR_BAD_REQUEST', message);

/** A string→string map field (`meta`). */
function stringMap(v: unknown, field: string): Record<string, string> | null {
  if (v === undefined || v === null) return null;
  if (typeof v !== 'object' || Array.isArray(v)) throw bad(`invalid ${field}: a map of strings`);
  for (const x of Object.values(v))
    if (typeof x !== 'string') throw bad(`invalid ${field}: a map of strings`);
  return v as Record<string, string>;
}

/** A list of strings, given as a list or a comma-separated string. */
export function stringList(v: unknown, field: string): string[] {
  if (v === undefined || v === null || v === '') return [];
  const items = typeof v === 'string' ? v.split(',') : Array.isArray(v) ? v : null;
  if (!items || items.some((x) => typeof x !== 'string')) throw bad(`invalid ${field}: a list of strings`);
  return (items as string[]).map((x) => x.trim()).filter((x) => x !== '');
}

function bool(v: unknown, field: string, dflt: boolean): boolean {
  if (v === undefined || v === null) return dflt;
  if (typeof v === 'boolean') return v;
  if (v === 'true' || v === 'false') return v === 'true';
  throw bad(`invalid ${field}: a boolean`);
}

function count(v: unknown, field: string): number {
  if (v === undefined || v === null) return 0;
  const n = typeof v === 'string' && /^\d{1,9}$/.test(v) ? Number(v) : v;
  if (typeof n !== 'number' || !Number.isSafeInteger(n) || n < 0)
    throw bad(`invalid ${field}: a non-negative integer`);
  return n;
}

const duration = (v: unknown, field: string) =>
  v === undefined || v === null || v === '' ? 0 : parseDurationSeconds(v, field);

/** The `auth` block of a login or create response, as upstream shapes it. */
export function authBlock(token: string, e: TokenEntry): Record<string, unknown> {
  return {
    client_token: token,
    accessor: e.accessor,
    policies: e.policies,
    token_policies: e.policies,
    identity_policies: null,
    metadata: e.meta,
    lease_duration: remainingTtl(e),
    renewable: e.renewable ?? false,
    entity_id: '',
    token_type: 'service',
    orphan: !e.parent,
    mfa_requirement: null,
    num_uses: e.num_uses ?? 0,
  };
}

/** The envelope's `warnings` when there are any (Vault answers null otherwise). */
export function warningsOf(warnings: readonly string[]): { warnings?: readonly string[] } {
  return warnings.length > 0 ? { warnings } : {};
}

/** What lookup answers. The token itself is shown only to whoever presented it. */
function lookupView(e: TokenEntry, id: string): Record<string, unknown> {
  const exp = e.expire_time ?? 0;
  return {
    accessor: e.accessor,
    creation_time: e.creation_time,
    creation_ttl: e.creation_ttl ?? 0,
    display_name: e.display_name,
    entity_id: '',
    expire_time: exp ? new Date(exp).toISOString() : null,
    explicit_max_ttl: e.explicit_max_ttl ?? 0,
    id,
    issue_time: new Date(e.creation_time * 1000).toISOString(),
    meta: e.meta,
    num_uses: e.num_uses ?? 0,
    orphan: !e.parent,
    path: e.path ?? 'auth/token/root',
    period: e.period || undefined,
    policies: e.policies,
    renewable: e.renewable ?? false,
    ttl: remainingTtl(e),
    type: 'service',
  };
}

/** POST auth/token/create[-orphan]: the rules are decideTokenCreate's (node/auth/token-create.ts). */
function create(orphanPath: boolean) {
  return async (c: Context): Promise<Reply> => {
    const b = await c.body();
    for (const unsupported of ['id', 'role_name', 'entity_alias'] as const) {
      if (b[unsupported] !== undefined && b[unsupported] !== '')
        throw new LwError('LW_ERR_UNSUPPORTED', `${unsupported} is not supported by leaderway's token store`);
    }
    if (b.type !== undefined && b.type !== 'service' && b.type !== 'default')
      throw new LwError('LW_ERR_UNSUPPORTED', 'only service tokens are supported');
    const parent = c.token;
    // Sudo on the create path itself, as upstream's SudoPrivilege checks it.
    const sudo =
      isRoot(parent) || (await c.svc.policies.acl(c.storage, parent.policies)).allows(c.req.path, ['sudo']);
    const displayName =
      typeof b.display_name === 'string' && b.display_name !== '' ? `token-${b.display_name}` : 'token';
    const spec = decideTokenCreate(
      parent,
      {
        policies: stringList(b.policies, 'policies'),
        noDefaultPolicy: bool(b.no_default_policy, 'no_default_policy', false),
        noParent: bool(b.no_parent, 'no_parent', false),
        ttlS: duration(b.ttl, 'ttl'),
        explicitMaxTtlS: duration(b.explicit_max_ttl, 'explicit_max_ttl'),
        periodS: duration(b.period, 'period'),
        numUses: count(b.num_uses, 'num_uses'),
        renewable: bool(b.renewable, 'renewable', true),
        displayName: displayName.slice(0, 128),
        meta: stringMap(b.meta, 'meta'),
      },
      { sudo, orphanPath, now: Date.now() },
    );
    const { token, entry, warnings } = await c.svc.tokens.create(c.storage, spec);
    return ok(null, { auth: authBlock(token, entry), ...warningsOf(warnings) });
  };
}

/**
 * What the token routes answer for a token they cannot act on, as OpenBao's token store words
 * it (vault/token_store.go): all 400 but lookup's 403.
 */
export const TOKEN_MESSAGES = {
  missingToken: 'missing token ID',
  missingAccessor: 'missing accessor',
  /** handleLookup: unknown, revoked or expired (403). */
  badToken: 'bad token',
  /** handleRenew, and revoke-accessor of a token that is no longer valid. */
  notFound: 'token not found',
  /** handleRevokeOrphan. */
  revokeNotFound: 'token to revoke not found',
  /** No token has this accessor (a revoked token's accessor is deleted with it). */
  invalidAccessor: 'invalid accessor',
  /** revoke-accessor of an unknown accessor: a warning on a 200, not an error. */
  noTokenForAccessor: 'No token found with this accessor',
} as const;

const badToken = () => new LwError('LW_ERR_PERMISSION_DENIED', TOKEN_MESSAGES.badToken);
const notFound = () => bad(TOKEN_MESSAGES.notFound);

/** The body's `token`: absent (undefined, null or "") is null; anything else as a string or not. */
async function bodyTokenValue(c: Context): Promise<unknown> {
  const raw = (await c.body()).token;
  return raw === undefined || raw === null || raw === '' ? null : raw;
}

/**
 * The token named by `token` in the body, alive (not revoked, expired or under a dead parent),
 * from whatever address the caller is at: its bound CIDRs limit where it is used, not where it
 * is looked up or revoked. 400 when there is none; `dead` answers a dead, unknown or non-string
 * one (upstream takes any value as a token ID, which then names no token).
 */
async function bodyToken(c: Context, dead: () => LwError): Promise<{ raw: string; entry: TokenEntry }> {
  const raw = await bodyTokenValue(c);
  if (raw === null) throw bad(TOKEN_MESSAGES.missingToken);
  const entry = typeof raw === 'string' ? await c.svc.tokens.alive(c.storage, raw) : null;
  if (!entry) throw dead();
  return { raw: raw as string, entry };
}

/**
 * The token behind the body's `accessor`, as upstream: 400 "missing accessor", 400 "invalid
 * accessor" when no token has it (a revoked token's accessor goes with it), and `dead` when its
 * token exists but is no longer valid (expired, or under an expired parent, not yet tidied):
 * lookup answers that 403 "bad token", renew 400 "token not found".
 */
async function bodyAccessor(c: Context, dead: () => LwError): Promise<TokenEntry> {
  const accessor = (await c.body()).accessor;
  if (accessor === undefined || accessor === null || accessor === '')
    throw bad(TOKEN_MESSAGES.missingAccessor);
  const entry = await c.svc.tokens.findByAccessor(c.storage, accessor);
  if (!entry) throw bad(TOKEN_MESSAGES.invalidAccessor);
  if (!(await c.svc.tokens.valid(c.storage, entry, null))) throw dead();
  return entry;
}

/** lookup: the body's token, or the caller's own when the body names none (as upstream). */
async function lookup(c: Context): Promise<Reply> {
  if ((await bodyTokenValue(c)) === null) return ok(lookupView(c.token, c.rawToken));
  const { raw, entry } = await bodyToken(c, badToken);
  return ok(lookupView(entry, raw));
}

async function renew(c: Context, e: TokenEntry, raw: string): Promise<Reply> {
  const increment = duration((await c.body()).increment, 'increment');
  const next = await c.svc.tokens.renew(c.storage, e, increment);
  return ok(null, { auth: authBlock(raw, next) });
}

/** The token routes. */
export const tokenRoutes: readonly Route[] = [
  { pattern: /^create$/, ops: { write: create(false) } },
  { pattern: /^create-orphan$/, ops: { write: create(true) } },
  {
    pattern: /^lookup-self$/,
    ops: {
      read: (c) => ok(lookupView(c.token, c.rawToken)),
      write: (c) => ok(lookupView(c.token, c.rawToken)),
    },
  },
  // GET looks up the caller, as upstream's read operation on this path does.
  { pattern: /^lookup$/, ops: { read: lookup, write: lookup } },
  {
    pattern: /^lookup-accessor$/,
    ops: { write: async (c) => ok(lookupView(await bodyAccessor(c, badToken), '')) },
  },
  { pattern: /^renew-self$/, ops: { write: (c) => renew(c, c.token, c.rawToken) } },
  {
    pattern: /^renew$/,
    ops: {
      write: async (c) => {
        const { raw, entry } = await bodyToken(c, notFound);
        return renew(c, entry, raw);
      },
    },
  },
  { pattern: /^renew-accessor$/, ops: { write: async (c) => renew(c, await bodyAccessor(c, notFound), '') } },
  {
    pattern: /^revoke-self$/,
    ops: {
      write: async (c) => {
        await c.svc.tokens.revoke(c.storage, c.token, false);
        return noContent();
      },
    },
  },
  {
    pattern: /^revoke$/,
    ops: {
      write: async (c) => {
        // Unknown or already revoked: nothing to do, as upstream (204).
        const raw = await bodyTokenValue(c);
        if (raw === null) throw bad(TOKEN_MESSAGES.missingToken);
        const entry = typeof raw === 'string' ? await c.svc.tokens.find(c.storage, raw) : null;
        if (entry) await c.svc.tokens.revoke(c.storage, entry, false);
        return noContent();
      },
    },
  },
  {
    pattern: /^revoke-accessor$/,
    ops: {
      write: async (c) => {
        // An accessor no token has is a warning, not an error, as upstream (200).
        const accessor = (await c.body()).accessor;
        if (accessor !== undefined && accessor !== null && accessor !== '') {
          if (!(await c.svc.tokens.findByAccessor(c.storage, accessor)))
            return ok(null, { warnings: [TOKEN_MESSAGES.noTokenForAccessor] });
        }
        await c.svc.tokens.revoke(c.storage, await bodyAccessor(c, notFound), false);
        return noContent();
      },
    },
  },
  {
    pattern: /^revoke-orphan$/,
    sudo: true,
    ops: {
      write: async (c) => {
        const revokeNotFound = () => bad(TOKEN_MESSAGES.revokeNotFound);
        await c.svc.tokens.revoke(c.storage, (await bodyToken(c, revokeNotFound)).entry, true);
        return noContent();
      },
    },
  },
  {
    pattern: /^accessors$/,
    sudo: true,
    ops: { list: async (c) => ok({ keys: await c.svc.tokens.accessors(c.storage) }) },
  },
];
