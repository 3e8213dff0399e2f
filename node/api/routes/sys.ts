/**
 * The `sys/` endpoints, with upstream's status codes. Answered by every node itself (`local`):
 * health (501 uninitialized, 503 sealed, 429 standby, 200 active, all overridable), seal-status,
 * init, leader. Served by the active (`sysRoutes`): ha-status, step-down, the mount table.
 */
import { LwError, MESSAGES } from '../../../shared/errors';
import { leaderOf, type NodeApi, sealOf, servingSession, unsealedOf } from '../node-api';
import { type ApiRequest, isTrue, readJsonBody } from '../request';
import { noContent, type Reply, type Route } from '../route';
import { authMountRoutes } from './sys-auth';
import { metricsRoutes } from './sys-metrics';
import { mountRoutes } from './sys-mounts';
import { policyRoutes } from './sys-policy';
import { wrappingRoutes } from './sys-wrapping';

/**
 * A route every node answers itself, before the seal check and without a token. `viaCluster`:
 * the request came over the cluster channel (from a gateway or a standby).
 */
export type LocalHandler = (req: ApiRequest, node: NodeApi, viaCluster: boolean) => Reply | Promise<Reply>;

/**
 * The most an init body may hold. A static seal needs none of its fields (they are accepted for
 * client compatibility), so anything larger is an attempt to make an unauthenticated request
 * expensive.
 */
export const INIT_BODY_LIMIT = 64 * 1024;

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
function health(req: ApiRequest, node: NodeApi): Reply {
  const q = req.query;
  const codes = {
    active: statusParam(q, 'activecode', 200),
    standby: statusParam(q, 'standbycode', 429),
    sealed: statusParam(q, 'sealedcode', 503),
    uninit: statusParam(q, 'uninitcode', 501),
  };
  const state = node.state();
  const seal = sealOf(state);
  const clusterId = unsealedOf(state)?.clusterId ?? '';
  const standby = seal === 'unsealed' && !servingSession(state);
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
  return { status, body };
}

/** GET sys/seal-status. */
function sealStatus(_req: ApiRequest, node: NodeApi): Reply {
  const state = node.state();
  const seal = sealOf(state);
  const clusterId = unsealedOf(state)?.clusterId ?? '';
  const body = {
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
  };
  return { status: 200, body };
}

/** GET|PUT|POST sys/init. */
async function init(req: ApiRequest, node: NodeApi, viaCluster: boolean): Promise<Reply> {
  if (req.operation === 'read') return { status: 200, body: { initialized: await node.initializedNow() } };
  if (req.operation !== 'write') throw new LwError('LW_ERR_METHOD_NOT_ALLOWED', 'unsupported operation');
  // Unauthenticated, so everything that can refuse it does, before a byte of the body is read.
  if (sealOf(node.state()) === 'unsealed' || (await node.initializedNow())) {
    throw new LwError('LW_ERR_ALREADY_INITIALIZED', MESSAGES.alreadyInitialized);
  }
  if (viaCluster) {
    // Before init there is no active node to forward to; this can only be replayed traffic.
    throw new LwError('LW_ERR_BAD_REQUEST', 'sys/init must be sent to a node directly');
  }
  // The body (secret_shares etc.) is accepted for client compatibility; a static seal needs none.
  await readJsonBody(req.raw, INIT_BODY_LIMIT);
  const rootToken = await node.initialize();
  const body = {
    keys: [],
    keys_base64: [],
    recovery_keys: [],
    recovery_keys_base64: [],
    root_token: rootToken,
  };
  return { status: 200, body };
}

/** GET sys/leader. */
function leader(_req: ApiRequest, node: NodeApi): Reply {
  const state = node.state();
  if (sealOf(state) !== 'unsealed') throw new LwError('LW_ERR_SEALED', MESSAGES.sealed);
  const ad = leaderOf(state);
  const self = servingSession(state);
  const isSelf = self !== null;
  const body = {
    ha_enabled: true,
    is_self: isSelf,
    active_time: self ? self.activeTime : (ad?.active_time ?? '0001-01-01T00:00:00Z'),
    leader_address: ad?.api_addr ?? '',
    leader_cluster_address: ad?.cluster_addr ?? '',
    // Not in Vault's API (clients ignore it): the current term's fencing epoch.
    leader_epoch: ad?.epoch ?? 0,
    performance_standby: false,
    performance_standby_last_remote_wal: 0,
  };
  return { status: 200, body };
}

/** Routes every node answers itself, by exact path, with the operations each accepts. */
export const localRoutes: ReadonlyMap<string, { ops: readonly string[]; handler: LocalHandler }> = new Map([
  ['sys/health', { ops: ['read', 'head'], handler: health }],
  ['sys/seal-status', { ops: ['read'], handler: sealStatus }],
  ['sys/init', { ops: ['read', 'write'], handler: init }],
  ['sys/leader', { ops: ['read'], handler: leader }],
]);

/** The sys/ routes served by the active node (paths relative to `sys/`). */
export const sysRoutes: readonly Route[] = [
  {
    pattern: /^ha-status$/,
    // The peers are the active's: it is the one they heartbeat.
    activeOnly: true,
    ops: {
      // Sorted by api_address, as upstream.
      read: (c) => ({
        status: 200,
        body: { nodes: [...c.node.peers()].sort((a, b) => a.api_address.localeCompare(b.api_address)) },
      }),
    },
  },
  {
    // Answers 204 first, then steps down: stepping down drains in-flight requests, this one too.
    pattern: /^step-down$/,
    sudo: true,
    ops: { write: (c) => ({ ...noContent(), after: () => c.node.stepDown() }) },
  },
  ...mountRoutes,
  ...authMountRoutes,
  ...policyRoutes,
  ...wrappingRoutes,
  ...metricsRoutes,
];
