/**
 * Route tables: each mount kind (sys/, a KV v1 or v2 mount, ...) is a list of routes, a path
 * pattern relative to the mount and a handler per operation. A handler gets a `Context` and
 * returns a `Reply`; the dispatcher (dispatch.ts) does the rest — authentication, sending,
 * errors — in one place. A path no route matches is 404; an operation its route lacks is 405.
 */
import { LwError } from '../../shared/errors';
import type { PolicyStore } from '../acl/policy-store';
import type { TokenEntry, TokenStore } from '../auth/token-store';
import type { EntryAdmission, SecureStorage } from '../barrier/secure-storage';
import { envelope } from './envelope';
import type { MountEntry, MountTable } from './mounts';
import type { NodeApi } from './node-api';
import type { ApiRequest, Operation } from './request';
import { readJsonBody } from './request';

/** The active node's stores, shared by every route table. */
export interface Services {
  /** Secrets engine mounts. */
  mounts: MountTable;
  /** Auth method mounts (paths relative to `auth/`). */
  auth: MountTable;
  tokens: TokenStore;
  policies: PolicyStore;
}

/** What a handler answers; the dispatcher sends it (without a body for HEAD). */
export interface Reply {
  status: number;
  /** Sent as JSON; a `RawBody` (shared/http/respond.ts) is sent as it is, with its content type. */
  body?: unknown;
  headers?: Record<string, string>;
  /** Runs once the reply has been handed to the connection (e.g. step down after the 204). */
  after?: () => void;
}

/** Everything a handler on the active node may use. */
export interface Context {
  req: ApiRequest;
  node: NodeApi;
  storage: SecureStorage;
  svc: Services;
  /** The calling token (a placeholder with no policies on unauthenticated routes). */
  token: TokenEntry;
  rawToken: string;
  /** The client's address (socket peer, or as the forwarding gateway/standby determined it). */
  clientAddr: string;
  /** The mount the request is routed to (null for sys/ and auth/token/). */
  mount: MountEntry | null;
  /** Named groups of the route's pattern (`path`, ...). */
  params: Record<string, string>;
  /** The request body as a JSON object (read once, bounded by max_request_size). */
  body(): Promise<Record<string, unknown>>;
  /**
   * The request's share of the response budget: a read of a secret (KV data) and an
   * authenticated body are admitted against it before they are fetched or read, and held until
   * the response is done.
   */
  budget: EntryAdmission;
  /** The wrap TTL the request asks for, seconds (null: none); dispatch wraps the answer. */
  wrapTtl: number | null;
}

export type Handler = (c: Context) => Reply | Promise<Reply>;

/** One route: a pattern on the path inside its mount, and a handler per operation. */
export interface Route {
  pattern: RegExp;
  ops: Partial<Record<Operation, Handler>>;
  /** A sudo path: the ACL must also grant `sudo` (root tokens always may). */
  sudo?: boolean;
  /** Served without a token (AppRole login). */
  unauthenticated?: boolean;
  /**
   * A response-wrapping token may call it (sys/wrapping/unwrap, which spends it): no ACL check,
   * no use counted. Every other route refuses wrapping tokens.
   */
  acceptsWrappingToken?: boolean;
  /**
   * Its reads need the active node (what only the active knows: its peers, its metrics). Every
   * other route's `read` and `list` are served by a standby with standby reads on; every other
   * operation is forwarded to the active (`standbyServes`).
   */
  activeOnly?: boolean;
  /**
   * Whether the target of a write exists, which decides the capability a write needs: `update`
   * when it does, `create` when not (upstream's existence check). Without it a write needs `update`.
   */
  exists?: (c: Context) => Promise<boolean>;
}

/**
 * Whether a standby serves `op` on `route` itself: reads and lists only — what reads storage and
 * writes nothing — unless the route needs the active. Everything else goes to the active.
 */
export function standbyServes(route: Route, op: Operation): boolean {
  return (op === 'read' || op === 'list') && !route.activeOnly;
}

/** Finds the route for `path` (relative to its mount). Throws 404 / 405. */
export function matchRoute(
  routes: readonly Route[],
  path: string,
  op: Operation | null,
  fullPath: string,
): { route: Route; handler: Handler; params: Record<string, string> } {
  for (const route of routes) {
    const m = route.pattern.exec(path);
    if (!m) continue;
    const handler = op ? route.ops[op] : undefined;
    if (!handler) throw new LwError('LW_ERR_METHOD_NOT_ALLOWED', 'unsupported operation');
    return { route, handler, params: { ...m.groups } };
  }
  throw new LwError('LW_ERR_NOT_FOUND', `no handler for route "${fullPath}"`);
}

/**
 * One engine object per mount (keyed by its storage id, so state such as a write mutex is shared
 * by every request to that mount): `const kv = perMount((id) => new KvEngine(id))`, then `kv(c)`.
 */
export function perMount<T>(make: (storageId: string) => T): (c: Context) => T {
  const byId = new Map<string, T>();
  return (c) => {
    const id = (c.mount as MountEntry).storage_id;
    let e = byId.get(id);
    if (e === undefined) {
      e = make(id);
      byId.set(id, e);
    }
    return e;
  };
}

/** A body reader that reads at most once; with a `budget`, the body is admitted against it first. */
export function bodyReader(
  req: ApiRequest,
  limit: number,
  budget?: EntryAdmission,
): () => Promise<Record<string, unknown>> {
  let body: Promise<Record<string, unknown>> | undefined;
  return () => {
    body ??= readJsonBody(req.raw, limit, budget);
    return body;
  };
}

/** 200 with Vault's logical envelope around `data`. */
export function ok(data: unknown, extra: Record<string, unknown> = {}): Reply {
  return { status: 200, body: envelope(data, extra) };
}

/** 200 as Vault answers sys/ reads: the fields at the top level and again under `data`. */
export function sysOk(data: Record<string, unknown>): Reply {
  return { status: 200, body: { ...data, ...envelope(data) } };
}

/** 204, no body. */
export function noContent(): Reply {
  return { status: 204 };
}
