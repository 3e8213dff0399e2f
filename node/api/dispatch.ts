/**
 * The node's HTTP entry point, shared by the API listener and the cluster listener. In order:
 *  1. parse and validate the request line; refuse features we do not have (namespaces) instead
 *     of ignoring them;
 *  2. routes every node answers itself (sys/health, sys/leader, sys/seal-status, sys/init);
 *  3. sealed → 503; standby → the standby policy (forward or 307);
 *  4. on the active: pick the route table (sys/, auth/token/, an auth method, or the secrets
 *     engine the path falls in) and the route; authenticate (unless the route needs no token);
 *     check the ACL — the one place every route's permission is decided (a response-wrapping
 *     token passes only where a route accepts it: unwrap); count the token's use; run the
 *     handler; wrap its reply if the request asked (wrapping.ts); send it.
 */
import type { Logger } from 'pino';
import { isLwError, LwError, MESSAGES } from '../../shared/errors';
import { CLIENT_ADDR_HEADER, NOT_SERVED_HEADER } from '../../shared/http/internal-headers';
import { type AnyResponse, sendError, sendJson, toLwError } from '../../shared/http/respond';
import { withWriteScope } from '../../shared/storage/write-scope';
import type { Capability } from '../acl/policy';
import { PolicyStore } from '../acl/policy-store';
import { invalidWrapping, isRoot, isWrapping, type TokenEntry, TokenStore } from '../auth/token-store';
import { standbyView } from '../barrier/config-stamp';
import type { SecureStorage } from '../barrier/secure-storage';
import { AUTH_MOUNTS, type MountEntry, MountTable, SECRET_MOUNTS } from './mounts';
import { type NodeApi, servingSession, type Unsealed, unsealedOf } from './node-api';
import { type AnyRequest, type ApiRequest, type Operation, parseRequest, readJsonBody } from './request';
import { type ResponseBudgetOptions, ResponseHold } from './response-hold';
import {
  bodyReader,
  type Context,
  matchRoute,
  type Reply,
  type Route,
  type Services,
  standbyServes,
} from './route';
import { appRoleRoutes } from './routes/approle';
import { kvV2Routes } from './routes/kv';
import { cubbyholeRoutes, kvV1Routes } from './routes/kv1';
import { localRoutes, sysRoutes } from './routes/sys';
import { tokenRoutes } from './routes/token';
import { standbyMayServe } from './standby-reads';
import { INDEX_HEADER, type IndexKey, vaultIndex } from './vault-index';
import { requestedWrapTtl, wrapReply } from './wrapping';

/** The most a request body may hold on a route that runs before authentication (a login). */
export const PRE_AUTH_BODY_LIMIT = 64 * 1024;

/** Route tables with a fixed prefix; everything else is looked up in the mount tables. */
const FIXED: ReadonlyArray<[prefix: string, routes: readonly Route[]]> = [
  ['sys/', sysRoutes],
  ['auth/token/', tokenRoutes],
];

/** The capability each operation needs (a write: `create` or `update`, see Route.exists). */
const OP_CAPABILITY: Record<Exclude<Operation, 'write'>, Capability> = {
  read: 'read',
  head: 'read',
  list: 'list',
  patch: 'patch',
  delete: 'delete',
};

/** Stands in for a token on routes that need none (login). */
const NO_TOKEN: TokenEntry = {
  hash: '',
  accessor: '',
  policies: [],
  display_name: '',
  creation_time: 0,
  meta: null,
};

/** Dispatches API requests for one node. */
export class ApiHandler {
  private readonly svc: Services = {
    mounts: new MountTable(SECRET_MOUNTS),
    auth: new MountTable(AUTH_MOUNTS),
    tokens: new TokenStore(),
    policies: new PolicyStore(),
  };

  /** The last X-Vault-Index made (indexFor). */
  private lastIndex: { unsealed: Unsealed; epoch: number; value: string } | undefined;

  /** `responses`: the node's response budget, which reads of secrets are admitted against. */
  constructor(
    private readonly node: NodeApi,
    private readonly log: Logger,
    private readonly responses: ResponseBudgetOptions,
  ) {}

  /** The token store (the active node's tidy loop uses it). */
  get tokens(): TokenStore {
    return this.svc.tokens;
  }

  /**
   * Serves one request. `viaCluster` is true for requests that arrived over the cluster channel
   * (forwarded by a standby or a gateway): they are served here or refused, never forwarded on.
   */
  handle(raw: AnyRequest, res: AnyResponse, viaCluster: boolean): void {
    const { result, applied } = withWriteScope(() => this.serve(raw, res, viaCluster));
    result.catch((err) => this.fail(res, err, applied()));
  }

  private async serve(raw: AnyRequest, res: AnyResponse, viaCluster: boolean): Promise<void> {
    const req = parseRequest(raw);
    refuseUnsupported(raw);
    const local = localRoutes.get(req.path);
    if (local) {
      if (req.operation === null || !local.ops.includes(req.operation))
        throw new LwError('LW_ERR_METHOD_NOT_ALLOWED', 'unsupported operation');
      send(res, req, await local.handler(req, this.node, viaCluster));
      return;
    }
    if (req.operation === null || req.operation === 'head')
      throw new LwError('LW_ERR_METHOD_NOT_ALLOWED', 'unsupported operation');
    const state = this.node.state();
    const unsealed = unsealedOf(state);
    if (!unsealed) throw new LwError('LW_ERR_SEALED', MESSAGES.sealed, { retryAfter: 1 });
    const session = servingSession(state);
    if (session) {
      await this.run(raw, res, req, session.storage, viaCluster, {
        unsealed,
        epoch: session.ad.epoch,
        standby: false,
      });
      return;
    }
    if (this.node.standbyReads && (await this.serveOnStandby(raw, res, req, unsealed, viaCluster))) return;
    if (viaCluster) throw new LwError('LW_ERR_NOT_ACTIVE', 'node is not active', { retryAfter: 1 });
    await unsealed.standby.handle(raw, res, req.url);
  }

  /**
   * A standby serving a read itself, on a read-only view of storage whose caches are keyed by the
   * config stamp read first, in the same round trip as the caller's token entry (config-stamp.ts
   * `standbyView`). False when the request must go to the active after
   * all — before anything was answered: the request, its route or its token needs the active, the
   * handler tried to write (the view refused it before it reached the store), or a read of
   * storage failed "not served" (a Redis failover: forwarding holds it, as with reads off).
   */
  private async serveOnStandby(
    raw: AnyRequest,
    res: AnyResponse,
    req: ApiRequest,
    unsealed: Unsealed,
    viaCluster: boolean,
  ): Promise<boolean> {
    // Writes go to the active without a word; only reads are counted (served or forwarded).
    if (req.operation !== 'read' && req.operation !== 'list') return false;
    const key = indexKey(unsealed);
    const epoch = unsealed.watcher.current()?.ad.epoch ?? 0;
    if (!standbyMayServe(raw, req, key, epoch)) {
      this.node.onStandbyRead('forwarded');
      return false;
    }
    try {
      const prefetch = this.svc.tokens.prefetch(unsealed.storage, requestToken(raw));
      const view = await standbyView(unsealed.storage, prefetch);
      await this.run(raw, res, req, view, viaCluster, { unsealed, epoch, standby: true });
    } catch (err) {
      // Not served here (it needs the active, or storage failed before anything was read): the
      // active serves it, and the standby's forwarding holds it through a failover as before.
      if (!toLwError(err).notServed || res.headersSent) {
        this.node.onStandbyRead('served');
        throw err;
      }
      this.node.onStandbyRead('forwarded');
      return false;
    }
    this.node.onStandbyRead('served');
    return true;
  }

  /**
   * Serves a request on `storage`: the active's fenced view, or a standby's read-only one (then
   * whatever needs the active is refused LW_ERR_NOT_ACTIVE before anything is answered).
   */
  private async run(
    raw: AnyRequest,
    res: AnyResponse,
    req: ApiRequest,
    storage: SecureStorage,
    viaCluster: boolean,
    on: { unsealed: Unsealed; epoch: number; standby: boolean },
  ): Promise<void> {
    if (req.operation === 'patch') requireMergePatch(raw);
    const wrapTtl = requestedWrapTtl(raw);
    const op = req.operation as Operation;
    const clientAddr = clientAddress(raw, viaCluster);
    // The route is looked up first (a login needs no token), but an unknown route is reported
    // only to an authenticated caller: without a token, every path is 403, so nobody can probe
    // which mounts exist.
    let matched: Awaited<ReturnType<ApiHandler['route']>> | undefined;
    let routeError: unknown;
    try {
      matched = await this.route(storage, req.path, op);
    } catch (err) {
      routeError = err;
    }
    if (on.standby && matched && !standbyServes(matched.route, op)) throw notActive();
    const rawToken = requestToken(raw) ?? '';
    const token = matched?.route.unauthenticated
      ? NO_TOKEN
      : await this.svc.tokens
          .authenticate(storage, rawToken, clientAddr)
          .catch((err) => this.refuseCaller(err, matched?.route, storage, raw));
    if (!matched) throw routeError;
    // A use to count is a write; a wrapping token is good only for unwrapping (a write too).
    if (on.standby && (token.num_uses || isWrapping(token))) throw notActive();
    // Given back when the response closes, however the request ends.
    const budget = new ResponseHold(this.responses, res);
    const ctx: Context = {
      req,
      node: this.node,
      storage,
      svc: this.svc,
      token,
      rawToken,
      clientAddr,
      mount: matched.mount,
      params: matched.params,
      // Before a token is checked (a login), a body may cost only a few KiB, and takes no part
      // of the budget (an anonymous client must not be able to hold it); after, it is admitted.
      body: matched.route.unauthenticated
        ? bodyReader(req, PRE_AUTH_BODY_LIMIT)
        : bodyReader(req, this.node.maxRequestSize, budget),
      budget,
      wrapTtl,
    };
    if (isWrapping(token)) {
      // Good for unwrapping itself and nothing else; the route spends it (no use is counted here).
      if (!matched.route.acceptsWrappingToken)
        throw new LwError('LW_ERR_PERMISSION_DENIED', MESSAGES.permissionDenied);
    } else if (!matched.route.unauthenticated) {
      await this.authorize(ctx, matched.route, op);
      await this.svc.tokens.use(storage, token);
    }
    const reply = await matched.handler(ctx);
    const answer = wrapTtl === null ? reply : await wrapReply(ctx, reply, wrapTtl);
    res.setHeader(INDEX_HEADER, this.indexFor(on.unsealed, on.epoch));
    send(res, req, answer);
  }

  /** The X-Vault-Index to answer with: the same for every answer of a term, so made once per term. */
  private indexFor(u: Unsealed, epoch: number): string {
    const last = this.lastIndex;
    if (last?.unsealed === u && last.epoch === epoch) return last.value;
    const value = vaultIndex(indexKey(u), epoch);
    this.lastIndex = { unsealed: u, epoch, value };
    return value;
  }

  /**
   * Throws for a caller whose token did not authenticate. Unwrap checks the wrapping token first,
   * as OpenBao: a spent, expired or unknown one is 400 "wrapping token is not valid" — the body's
   * `token` if given, else the caller's own (which is then the wrapping token) — and only a good
   * wrapping token sent by a bad caller is 403.
   */
  private async refuseCaller(
    err: unknown,
    route: Route | undefined,
    s: SecureStorage,
    raw: AnyRequest,
  ): Promise<never> {
    if (!route?.acceptsWrappingToken || !isLwError(err, 'LW_ERR_PERMISSION_DENIED')) throw err;
    const body = await readJsonBody(raw, PRE_AUTH_BODY_LIMIT);
    if (body.token === undefined) throw invalidWrapping();
    await this.svc.tokens.wrappingEntry(s, body.token);
    throw err;
  }

  /**
   * The ACL check: 403 unless the token's policies grant what `op` on this path needs (and the
   * response wrapping the path's policy requires, if any).
   */
  private async authorize(c: Context, route: Route, op: Operation): Promise<void> {
    if (isRoot(c.token)) return;
    const needed: Capability[] = [
      op === 'write' ? (route.exists && !(await route.exists(c)) ? 'create' : 'update') : OP_CAPABILITY[op],
    ];
    if (route.sudo) needed.push('sudo');
    // List requests are checked against the directory (`secret/metadata/app/`), as upstream.
    const path = op === 'list' ? `${c.req.path}/` : c.req.path;
    const acl = await this.svc.policies.acl(c.storage, c.token.policies);
    if (!acl.allows(path, needed, c.wrapTtl))
      throw new LwError('LW_ERR_PERMISSION_DENIED', MESSAGES.permissionDenied);
  }

  /** The route table, route and handler for `path`, with its mount (if a mounted engine). */
  private async route(storage: SecureStorage, path: string, op: Operation) {
    const { routes, rel, mount } = await this.table(storage, path);
    return { ...matchRoute(routes, rel, op, path), mount };
  }

  private async table(
    storage: SecureStorage,
    path: string,
  ): Promise<{ routes: readonly Route[]; rel: string; mount: MountEntry | null }> {
    for (const [prefix, routes] of FIXED) {
      if (path.startsWith(prefix)) return { routes, rel: path.slice(prefix.length), mount: null };
    }
    const notFound = () => new LwError('LW_ERR_NOT_FOUND', `no handler for route "${path}"`);
    if (path.startsWith('auth/')) {
      const found = await this.svc.auth.resolve(storage, path.slice('auth/'.length));
      if (found?.mount.type !== 'approle') throw notFound();
      return { routes: appRoleRoutes, rel: found.rest, mount: found.mount };
    }
    const found = await this.svc.mounts.resolve(storage, path);
    if (!found) throw notFound();
    const { type, options } = found.mount;
    const routes = type === 'cubbyhole' ? cubbyholeRoutes : options.version === '2' ? kvV2Routes : kvV1Routes;
    return { routes, rel: found.rest, mount: found.mount };
  }

  /** `applied`: the request stored something before it failed (so it must not be retried). */
  private fail(res: AnyResponse, err: unknown, applied: boolean): void {
    const cause = toLwError(err);
    // Part of the request was stored (a KV write's data, then its metadata fenced out): it must
    // be neither retried by a gateway nor reported as not done.
    const e =
      applied && cause.notServed
        ? new LwError(
            'LW_ERR_OUTCOME_UNKNOWN',
            'the request failed after part of it was stored; its outcome is unknown: check before retrying',
            { retryAfter: 1 },
          )
        : cause;
    if (e.code === 'LW_ERR_INTERNAL' || e.code === 'LW_ERR_CORRUPT') {
      this.log.error(
        { err: { name: (err as Error)?.name, message: (err as Error)?.message } },
        'request failed',
      );
    }
    this.node.onRequestError(e.code);
    if (cause.code === 'LW_ERR_FENCED_WRITE') this.node.onFencedWrite();
    if (res.headersSent) {
      res.destroy();
      return;
    }
    // A "not served" code (shared/errors.ts: not active, draining, fenced, storage unreachable in
    // a Redis failover) before anything was stored: the gateway holds the request and retries it.
    const notServed = !applied && e.notServed;
    sendError(res, e, notServed ? { [NOT_SERVED_HEADER]: e.code } : {});
  }
}

/** 503 "node is not active" ("not served"): on a standby, the request goes to the active. */
const notActive = () => new LwError('LW_ERR_NOT_ACTIVE', 'node is not active', { retryAfter: 1 });

/** The key X-Vault-Index values are written and checked with (the cluster's, nodes only). */
function indexKey(u: Unsealed): IndexKey {
  return { clusterId: u.clusterId, hmac: (d) => u.storage.barrier.hmac(d) };
}

/** The client token from `X-Vault-Token` or `Authorization: Bearer`, if any. */
export function requestToken(req: AnyRequest): string | undefined {
  const header = req.headers['x-vault-token'];
  if (typeof header === 'string' && header !== '') return header;
  const auth = req.headers.authorization;
  if (typeof auth === 'string') {
    const m = /^Bearer\s+(\S+)\s*$/i.exec(auth);
    if (m) return m[1];
  }
  return undefined;
}

/**
 * The client's address. On the API listener: the socket's peer. Over the cluster channel the
 * peer is a gateway or standby (mutually authenticated), which determined the client's address
 * itself — with its own view of trusted proxies — and passed it in an internal header that no
 * client can set (gateways and standbys drop every internal header a client sends).
 */
export function clientAddress(req: AnyRequest, viaCluster: boolean): string {
  const forwarded = req.headers[CLIENT_ADDR_HEADER];
  const addr =
    viaCluster && typeof forwarded === 'string' && forwarded !== ''
      ? forwarded
      : (req.socket?.remoteAddress ?? '');
  return addr.startsWith('::ffff:') ? addr.slice(7) : addr;
}

function send(res: AnyResponse, req: ApiRequest, reply: Reply): void {
  sendJson(res, reply.status, reply.body, reply.headers, req.method === 'HEAD');
  reply.after?.();
}

/**
 * Features a client may ask for that leaderway does not have: answering as if it had them would
 * mislead (a namespaced client would read and write root's data).
 */
function refuseUnsupported(raw: AnyRequest): void {
  const ns = raw.headers['x-vault-namespace'];
  if (typeof ns === 'string' && ns.trim() !== '') {
    throw new LwError(
      'LW_ERR_UNSUPPORTED',
      'namespaces are not supported: leaderway has only the root namespace (remove X-Vault-Namespace)',
    );
  }
}

/** PATCH must carry a JSON merge patch, as upstream requires. */
function requireMergePatch(raw: AnyRequest): void {
  const type = String(raw.headers['content-type'] ?? '')
    .split(';')[0]
    ?.trim()
    .toLowerCase();
  if (type !== 'application/merge-patch+json') {
    raw.resume();
    throw new LwError(
      'LW_ERR_UNSUPPORTED_MEDIA_TYPE',
      `PATCH requires Content-Type application/merge-patch+json, provided ${type || 'none'}`,
    );
  }
}
