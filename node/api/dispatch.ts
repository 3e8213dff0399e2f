/**
 * The node's HTTP entry point, shared by the API listener and the cluster listener. It decides
 * where a request is served: locally (sys/health, sys/leader, sys/seal-status, sys/init), on
 * this node when it is active, or — on a standby — forwarded / redirected by the standby policy.
 */
import type { Logger } from 'pino';
import { LwError, MESSAGES } from '../../shared/errors';
import { NOT_SERVED_HEADER } from '../../shared/http/internal-headers';
import { type AnyResponse, sendError, sendJson, toLwError } from '../../shared/http/respond';
import { KvEngine } from '../kv/kv-engine';
import { envelope } from './envelope';
import { kvRoute } from './kv-routes';
import type { NodeApi } from './node-api';
import { type AnyRequest, type ApiRequest, parseRequest } from './request';
import * as sys from './sys-routes';
import { authenticate, isRoot, requestToken, type TokenEntry } from './tokens';

type LocalHandler = (req: ApiRequest, res: AnyResponse) => void | Promise<void>;
type ActiveHandler = (
  req: ApiRequest,
  res: AnyResponse,
  token: TokenEntry,
  rawToken: string,
) => void | Promise<void>;

/** Which operations each route accepts; anything else is 405. */
interface Route {
  ops: ReadonlyArray<ApiRequest['operation']>;
  local?: LocalHandler;
  active?: ActiveHandler;
  root?: boolean;
}

/** Errors after which nothing was stored, so a gateway may safely retry the request elsewhere. */
const NOT_SERVED_CODES = new Set(['LW_ERR_NOT_ACTIVE', 'LW_ERR_FENCED_WRITE', 'LW_ERR_DRAINING']);

/** Dispatches API requests for one node. */
export class ApiHandler {
  private readonly kv = new KvEngine('secret');
  private readonly exact: Map<string, Route>;

  constructor(
    private readonly node: NodeApi,
    private readonly clusterId: () => string,
    private readonly log: Logger,
  ) {
    this.exact = new Map<string, Route>([
      ['sys/health', { ops: ['read', 'head'], local: (r, s) => sys.health(r, s, node, this.clusterId()) }],
      ['sys/seal-status', { ops: ['read'], local: (r, s) => sys.sealStatus(r, s, node, this.clusterId()) }],
      ['sys/init', { ops: ['read', 'write'], local: (r, s) => sys.init(r, s, node) }],
      ['sys/leader', { ops: ['read'], local: (r, s) => sys.leader(r, s, node) }],
      ['sys/ha-status', { ops: ['read'], active: (r, s) => sys.haStatus(r, s, node) }],
      ['sys/step-down', { ops: ['write'], root: true, active: (r, s) => sys.stepDown(r, s, node) }],
      [
        'auth/token/lookup-self',
        { ops: ['read', 'write'], active: (_r, s, t, raw) => lookupSelf(s, t, raw) },
      ],
    ]);
  }

  /**
   * Serves one request. `viaCluster` is true for requests that arrived over the cluster channel
   * (forwarded by a standby or a gateway): they are served here or refused, never forwarded on.
   */
  handle(raw: AnyRequest, res: AnyResponse, viaCluster: boolean): void {
    this.serve(raw, res, viaCluster).catch((err) => this.fail(res, err));
  }

  private async serve(raw: AnyRequest, res: AnyResponse, viaCluster: boolean): Promise<void> {
    const req = parseRequest(raw);
    const route = this.route(req.path);
    if (!route) throw new LwError('LW_ERR_NOT_FOUND', `no handler for route "${req.path}"`);
    if (!route.ops.includes(req.operation))
      throw new LwError('LW_ERR_METHOD_NOT_ALLOWED', 'unsupported operation');
    if (route.local) {
      await route.local(req, res);
      return;
    }
    if (this.node.sealState() !== 'unsealed')
      throw new LwError('LW_ERR_SEALED', MESSAGES.sealed, { retryAfter: 1 });
    if (!this.node.isActive()) {
      if (viaCluster) throw new LwError('LW_ERR_NOT_ACTIVE', 'node is not active', { retryAfter: 1 });
      await this.node.standbyHandle(raw, res, req.url);
      return;
    }
    const storage = this.node.activeStorage();
    const rawToken = requestToken(raw);
    const token = await authenticate(storage, rawToken);
    if (route.root && !isRoot(token))
      throw new LwError('LW_ERR_PERMISSION_DENIED', MESSAGES.permissionDenied);
    if (route.active) {
      await route.active(req, res, token, rawToken ?? '');
      return;
    }
    // Only the KV mount remains (route() matched it).
    if (req.path.startsWith('sys/internal/ui/mounts/')) {
      sendJson(
        res,
        200,
        envelope({ path: 'secret/', type: 'kv', options: { version: '2' }, description: '' }),
      );
      return;
    }
    await kvRoute(req, res, this.kv, storage, req.path.slice('secret/'.length), this.node.maxRequestSize);
  }

  private route(path: string): Route | undefined {
    const exact = this.exact.get(path);
    if (exact) return exact;
    if (path.startsWith('secret/')) return { ops: ['read', 'list', 'write', 'delete'] };
    if (path.startsWith('sys/internal/ui/mounts/secret/') || path === 'sys/internal/ui/mounts/secret') {
      return { ops: ['read'] };
    }
    return undefined;
  }

  private fail(res: AnyResponse, err: unknown): void {
    const e = toLwError(err);
    if (e.code === 'LW_ERR_INTERNAL' || e.code === 'LW_ERR_CORRUPT') {
      this.log.error(
        { err: { name: (err as Error)?.name, message: (err as Error)?.message } },
        'request failed',
      );
    }
    if (e.code === 'LW_ERR_FENCED_WRITE') this.node.onFencedWrite();
    if (res.headersSent) {
      res.destroy();
      return;
    }
    sendError(res, e, NOT_SERVED_CODES.has(e.code) ? { [NOT_SERVED_HEADER]: e.code } : {});
  }
}

function lookupSelf(res: AnyResponse, t: TokenEntry, rawToken: string): void {
  sendJson(
    res,
    200,
    envelope({
      accessor: t.accessor,
      creation_time: t.creation_time,
      creation_ttl: 0,
      display_name: t.display_name,
      entity_id: '',
      expire_time: null,
      explicit_max_ttl: 0,
      id: rawToken,
      meta: t.meta,
      num_uses: 0,
      orphan: true,
      path: 'auth/token/root',
      policies: t.policies,
      renewable: false,
      ttl: 0,
      type: 'service',
    }),
  );
}
