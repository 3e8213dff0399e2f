/**
 * The `sys/` endpoints load balancers and clients depend on, with upstream's status codes:
 * health (501 uninitialized, 503 sealed, 429 standby, 200 active, all overridable), seal-status,
 * init, leader (answered locally on every node), and ha-status / step-down (on the active).
 */
import { LwError, MESSAGES } from '../../shared/errors';
import type { AnyResponse } from '../../shared/http/respond';
import { sendJson } from '../../shared/http/respond';
import type { NodeApi } from './node-api';
import { type ApiRequest, isTrue, readJsonBody } from './request';

const CLUSTER_NAME = 'leaderway';

function statusParam(q: URLSearchParams, name: string, dflt: number): number {
  const raw = q.get(name);
  if (raw === null || raw === '') return dflt;
  const n = Number(raw);
  if (!/^\d{3}$/.test(raw) || n < 100 || n > 599) {
    throw new LwError('LW_ERR_BAD_REQUEST', `unable to parse ${name} parameter`);
  }
  return n;
}

/** GET|HEAD sys/health. */
export function health(req: ApiRequest, res: AnyResponse, node: NodeApi, clusterId: string): void {
  const q = req.query;
  const codes = {
    active: statusParam(q, 'activecode', 200),
    standby: statusParam(q, 'standbycode', 429),
    sealed: statusParam(q, 'sealedcode', 503),
    uninit: statusParam(q, 'uninitcode', 501),
  };
  const seal = node.sealState();
  const standby = seal === 'unsealed' && !node.isActive();
  let status = codes.active;
  if (seal === 'uninitialized') status = codes.uninit;
  else if (seal === 'sealed') status = codes.sealed;
  else if (standby && !isTrue(q.get('standbyok'))) status = codes.standby;
  const body: Record<string, unknown> = {
    initialized: seal !== 'uninitialized',
    sealed: seal !== 'unsealed',
    standby,
    performance_standby: false,
    replication_performance_mode: 'disabled',
    replication_dr_mode: 'disabled',
    server_time_utc: Math.floor(Date.now() / 1000),
    version: node.version,
  };
  if (seal === 'unsealed') {
    body.cluster_name = CLUSTER_NAME;
    body.cluster_id = clusterId;
  }
  sendJson(res, status, body, {}, req.method === 'HEAD');
}

/** GET sys/seal-status. */
export function sealStatus(_req: ApiRequest, res: AnyResponse, node: NodeApi, clusterId: string): void {
  const seal = node.sealState();
  sendJson(res, 200, {
    type: 'static',
    initialized: seal !== 'uninitialized',
    sealed: seal !== 'unsealed',
    t: 1,
    n: 1,
    progress: 0,
    nonce: '',
    version: node.version,
    migration: false,
    recovery_seal: false,
    storage_type: node.storageType,
    ...(seal === 'unsealed' ? { cluster_name: CLUSTER_NAME, cluster_id: clusterId } : {}),
  });
}

/** GET|PUT|POST sys/init. */
export async function init(req: ApiRequest, res: AnyResponse, node: NodeApi): Promise<void> {
  if (req.operation === 'read') {
    sendJson(res, 200, { initialized: await node.initializedNow() });
    return;
  }
  if (req.operation !== 'write') throw new LwError('LW_ERR_METHOD_NOT_ALLOWED', 'unsupported operation');
  // The body (secret_shares etc.) is accepted for client compatibility; a static seal needs none.
  await readJsonBody(req.raw, node.maxRequestSize);
  if (node.sealState() !== 'uninitialized') {
    throw new LwError('LW_ERR_ALREADY_INITIALIZED', MESSAGES.alreadyInitialized);
  }
  const rootToken = await node.initialize();
  sendJson(res, 200, {
    keys: [],
    keys_base64: [],
    recovery_keys: [],
    recovery_keys_base64: [],
    root_token: rootToken,
  });
}

/** GET sys/leader. */
export function leader(_req: ApiRequest, res: AnyResponse, node: NodeApi): void {
  if (node.sealState() !== 'unsealed') throw new LwError('LW_ERR_SEALED', MESSAGES.sealed);
  const ad = node.leader();
  const isSelf = node.isActive();
  sendJson(res, 200, {
    ha_enabled: true,
    is_self: isSelf,
    active_time: isSelf ? node.activeSince() : (ad?.active_time ?? '0001-01-01T00:00:00Z'),
    leader_address: ad?.api_addr ?? '',
    leader_cluster_address: ad?.cluster_addr ?? '',
    performance_standby: false,
    performance_standby_last_remote_wal: 0,
  });
}

/** GET sys/ha-status (active, authenticated). */
export function haStatus(_req: ApiRequest, res: AnyResponse, node: NodeApi): void {
  const nodes = [...node.peers()].sort((a, b) => a.api_address.localeCompare(b.api_address));
  sendJson(res, 200, { nodes });
}

/**
 * PUT|POST sys/step-down (active, root token): answers 204 first, then the node steps down.
 * Stepping down drains in-flight requests, this one included, so it must not be awaited here.
 */
export function stepDown(_req: ApiRequest, res: AnyResponse, node: NodeApi): void {
  sendJson(res, 204, undefined);
  node.stepDown();
}
