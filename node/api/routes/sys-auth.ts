/**
 * Auth methods: `sys/auth` (list), `sys/auth/:path` (enable, read, disable) and
 * `sys/auth/:path/tune` (read, tune). The token store is always at `token/`; AppRole can be
 * enabled at any other path. Disabling a method deletes its data and revokes every token it
 * issued, as upstream.
 *
 * Tuning takes what leaderway enforces and refuses the rest by name rather than store a setting
 * nothing reads: an AppRole mount's max_lease_ttl caps its logins' tokens and its
 * default_lease_ttl is their TTL where the role sets no token_ttl (routes/approle.ts, as
 * OpenBao's CalculateTTL); the token store takes neither (a token's TTLs come from its create
 * request).
 */
import { LwError } from '../../../shared/errors';
import { DEFAULT_TTL_S, MAX_TTL_S } from '../../auth/token-store';
import { purge } from '../../kv/purge';
import { mountPath } from '../mounts';
import { type Context, noContent, type Reply, type Route, sysOk } from '../route';
import { authView, type Tunable, tuneCommon } from './sys-mounts';

const bad = (message: string) => new LwError('LW_ERR_BAD_REQUEST', message);
const unsupported = (message: string) => new LwError('LW_ERR_UNSUPPORTED', message);

/**
 * Fields OpenBao tunes on an auth mount that leaderway does not enforce: refused unless empty
 * (a client that sends its defaults, `[]` or `""`, is not refused).
 */
const UNENFORCED_TUNABLES = [
  'audit_non_hmac_request_keys',
  'audit_non_hmac_response_keys',
  'passthrough_request_headers',
  'allowed_response_headers',
  'user_lockout_config',
  'plugin_version',
  'options',
] as const;

/** The token types OpenBao takes in a tune (`""` keeps the current one). */
const TOKEN_TYPES = new Set(['', 'default-service', 'default-batch', 'service', 'batch']);

const isEmpty = (v: unknown) =>
  v === undefined ||
  v === null ||
  v === '' ||
  (Array.isArray(v) && v.length === 0) ||
  (typeof v === 'object' && !Array.isArray(v) && Object.keys(v as object).length === 0);

/**
 * Applies a `sys/auth/:path/tune` body (or an enable's `config`) to the draft `m`, with
 * OpenBao's checks (handleTuneWriteCommon) and leaderway's: only what is enforced is taken.
 */
export function tuneAuth(m: Tunable, body: Record<string, unknown>): void {
  for (const field of UNENFORCED_TUNABLES) {
    if (!isEmpty(body[field])) throw unsupported(`${field} cannot be tuned on auth methods by leaderway`);
  }
  if (body.token_type !== undefined && body.token_type !== null) {
    if (m.type === 'token') throw bad("'token_type' cannot be set for 'token' or 'ns_token' auth mounts");
    if (typeof body.token_type !== 'string' || !TOKEN_TYPES.has(body.token_type))
      throw bad("invalid value for 'token_type'");
    if (body.token_type !== '' && body.token_type !== 'default-service')
      throw unsupported('token_type: leaderway issues service tokens only (default-service)');
  }
  tuneCommon(m, body);
  if (m.type === 'token' && (m.config.default_lease_ttl > 0 || m.config.max_lease_ttl > 0)) {
    throw unsupported(
      "the token store's lease TTLs cannot be tuned by leaderway: give ttl or explicit_max_ttl when creating a token",
    );
  }
  if (m.config.max_lease_ttl > MAX_TTL_S)
    throw bad(`max_lease_ttl may not exceed the system maximum of ${MAX_TTL_S} seconds`);
}

/**
 * What `GET sys/auth/:path/tune` answers, as OpenBao's handleTuneReadCommon: the lease TTLs in
 * force (the system's where the mount sets none), and listing_visibility only when set.
 */
export function authTuneView(m: Tunable): Record<string, unknown> {
  return {
    description: m.description,
    default_lease_ttl: m.config.default_lease_ttl || DEFAULT_TTL_S,
    max_lease_ttl: m.config.max_lease_ttl || MAX_TTL_S,
    force_no_cache: false,
    token_type: 'default-service',
    ...(m.config.listing_visibility ? { listing_visibility: m.config.listing_visibility } : {}),
  };
}

/** OpenBao's path for an auth mount in tune errors: `auth/approle/`. */
const tunePath = (c: Context) => `auth/${mountPath(c.params.path as string)}`;

async function readTune(c: Context): Promise<Reply> {
  const m = await c.svc.auth.get(c.storage, c.params.path as string);
  if (!m) throw bad(`cannot fetch sysview for path "${tunePath(c)}"`);
  return sysOk(authTuneView(m));
}

async function writeTune(c: Context): Promise<Reply> {
  const body = await c.body();
  if (!(await c.svc.auth.get(c.storage, c.params.path as string)))
    throw bad(`tune of path "${tunePath(c)}" failed: no mount entry found`);
  await c.svc.auth.tune(c.storage, c.params.path as string, (m) => tuneAuth(m, body));
  return noContent();
}

async function list(c: Context): Promise<Reply> {
  const data: Record<string, unknown> = {};
  for (const m of await c.svc.auth.list(c.storage)) data[m.path] = authView(m);
  return sysOk(data);
}

async function enable(c: Context): Promise<Reply> {
  const b = await c.body();
  if (b.type !== 'approle') {
    throw bad(
      b.type === 'token'
        ? 'the token auth method is always enabled at token/'
        : `plugin not found in the catalog: ${String(b.type)}`,
    );
  }
  const description = b.description ?? '';
  if (typeof description !== 'string') throw bad('invalid description');
  if (
    b.config !== undefined &&
    b.config !== null &&
    (typeof b.config !== 'object' || Array.isArray(b.config))
  )
    throw bad('invalid config');
  const spec: Tunable = {
    type: 'approle',
    description,
    config: { default_lease_ttl: 0, max_lease_ttl: 0, listing_visibility: '' },
  };
  // An enable's config takes the same fields, under the same rules, as a later tune.
  tuneAuth(spec, (b.config as Record<string, unknown> | undefined) ?? {});
  await c.svc.auth.mount(c.storage, c.params.path as string, {
    ...spec,
    options: {},
    local: b.local === true,
    seal_wrap: b.seal_wrap === true,
  });
  return noContent();
}

async function read(c: Context): Promise<Reply> {
  const m = await c.svc.auth.get(c.storage, c.params.path as string);
  if (!m) throw bad(`no auth method at ${mountPath(c.params.path as string)}`);
  return sysOk(authView(m));
}

async function disable(c: Context): Promise<Reply> {
  const removed = await c.svc.auth.unmount(c.storage, c.params.path as string);
  if (removed) {
    const loginPath = `auth/${removed.path}`;
    await c.svc.tokens.tidy(c.storage, (e) => (e.path ?? '').startsWith(loginPath));
    await purge(c.storage, `auth/${removed.storage_id}/`);
  }
  return noContent();
}

/** The auth method routes, relative to `sys/`. */
export const authMountRoutes: readonly Route[] = [
  { pattern: /^auth$/, ops: { read: list } },
  // OpenBao's system backend lists `auth/*` among its root paths: enabling, reading, tuning
  // or disabling an auth method needs sudo (listing them, `sys/auth`, does not). Tune first:
  // the enable route's pattern would take `approle/tune` as a mount path.
  { pattern: /^auth\/(?<path>.+)\/tune$/, sudo: true, ops: { read: readTune, write: writeTune } },
  { pattern: /^auth\/(?<path>.+)$/, sudo: true, ops: { read, write: enable, delete: disable } },
];
