/**
 * Where an overlay's nodes and gateways keep and read their state — Redis, or an external
 * PostgreSQL (components/external-postgresql) — and where they may connect (an egress
 * NetworkPolicy). Rules as functions returning problems, like invariants.ts; manifests.test.ts
 * runs them on every overlay and postgresql-overlay.test.ts on deliberately broken copies.
 */
import * as path from 'node:path';
import type { INetworkPolicy, INetworkPolicyPeer } from 'kubernetes-models/networking.k8s.io/v1';
import type { IConfigMap, IContainer } from 'kubernetes-models/v1';
import {
  envOf,
  GATEWAY_LABELS,
  mainContainer,
  NODE_CLUSTER_PORT,
  NODE_LABELS,
  type OverlayExpectations,
  REDIS_PORT,
  rolePod,
  SENTINEL_PORT,
} from './invariants';
import { type PodTemplate, selects } from './pods';
import type { K8sObject } from './render';

export const POSTGRESQL_PORT = 5432;
export const DNS_PORT = 53;
/** Where pods find the PostgreSQL server's CA: the `sslrootcert` of every documented URL. */
export const POSTGRESQL_CA_PATH = '/etc/leaderway/postgresql-ca/ca.crt';

/** Each role's Secret with its storage URL: one role, one credential (the gateway's reads only). */
const URL_SECRETS = {
  redis: { node: 'leaderway-redis-node', gateway: 'leaderway-redis-gateway' },
  postgresql: { node: 'leaderway-postgresql-node', gateway: 'leaderway-postgresql-gateway' },
} as const;

const ROLES = [
  [NODE_LABELS, 'node'],
  [GATEWAY_LABELS, 'gateway'],
] as const;

/**
 * Both roles use the overlay's storage (LEADERWAY_STORAGE), each with its own URL Secret through
 * a secretKeyRef (a gateway holding the nodes' credential could write). On PostgreSQL: no Redis
 * variable or ConfigMap key is left over from the base, and the server CA that `sslrootcert`
 * names is mounted read-only from a Secret, its `ca.crt` only.
 */
export function storageProblems(objects: K8sObject[], expect: OverlayExpectations): string[] {
  const problems: string[] = [];
  for (const [labels, role] of ROLES) {
    const pod = rolePod(objects, labels);
    const c = mainContainer(pod);
    const env = envOf(objects, pod, c);
    const type = env.LEADERWAY_STORAGE ?? 'redis';
    if (type !== expect.storage)
      problems.push(`${pod.owner}: LEADERWAY_STORAGE is ${type}, expected ${expect.storage}`);
    const urlVar = expect.storage === 'redis' ? 'LEADERWAY_REDIS_URL' : 'LEADERWAY_POSTGRESQL_URL';
    const ref = (c.env ?? []).find((v) => v.name === urlVar)?.valueFrom?.secretKeyRef;
    const secret = URL_SECRETS[expect.storage][role];
    if (ref?.name !== secret || ref.key !== 'url')
      problems.push(`${pod.owner}: ${urlVar} must come from Secret ${secret}, key url`);
    if (expect.storage !== 'postgresql') continue;
    const redis = (c.env ?? []).filter((v) => v.name.includes('REDIS')).map((v) => v.name);
    if (redis.length > 0) problems.push(`${pod.owner}: Redis variables on PostgreSQL: ${redis.join(', ')}`);
    problems.push(...caMountProblems(pod, c));
  }
  if (expect.storage === 'postgresql') {
    for (const o of objects) {
      if (o.kind !== 'ConfigMap') continue;
      const keys = Object.keys((o as unknown as IConfigMap).data ?? {}).filter((k) => k.includes('REDIS'));
      if (keys.length > 0)
        problems.push(`ConfigMap/${o.metadata.name}: Redis settings on PostgreSQL: ${keys}`);
    }
  }
  return problems;
}

/**
 * The CA file is where `sslrootcert` says, read-only, not through subPath (a subPath mount never
 * sees a rotated CA), from a Secret volume that projects `ca.crt` alone: a Secret of type
 * kubernetes.io/tls (cert-manager, a PostgreSQL operator's CA Secret) also holds a private key.
 */
function caMountProblems(pod: PodTemplate, c: IContainer): string[] {
  const dir = path.posix.dirname(POSTGRESQL_CA_PATH);
  const file = path.posix.basename(POSTGRESQL_CA_PATH);
  const mount = (c.volumeMounts ?? []).find((m) => m.mountPath === dir);
  if (!mount) return [`${pod.owner}: nothing mounted at ${dir} (sslrootcert=${POSTGRESQL_CA_PATH})`];
  const problems: string[] = [];
  if (mount.readOnly !== true) problems.push(`${pod.owner}: ${dir} is not mounted read-only`);
  if (mount.subPath) problems.push(`${pod.owner}: ${dir} is a subPath mount (a rotated CA is never seen)`);
  const secret = (pod.spec.volumes ?? []).find((v) => v.name === mount.name)?.secret;
  if (!secret?.secretName) problems.push(`${pod.owner}: ${dir} is not a Secret volume`);
  else if (secret.items?.length !== 1 || secret.items[0]?.key !== 'ca.crt' || secret.items[0]?.path !== file)
    problems.push(`${pod.owner}: Secret ${secret.secretName} must project only ca.crt as ${file}`);
  return problems;
}

/**
 * Where pods labelled `labels` may connect on `port`: "any" destination, the peers allowed, or
 * null when no NetworkPolicy restricts their egress. Named ports and endPort are not used here.
 */
export function allowedEgress(
  objects: K8sObject[],
  labels: Record<string, string>,
  port: number,
  protocol: 'TCP' | 'UDP' = 'TCP',
): 'any' | INetworkPolicyPeer[] | null {
  const policies = objects
    .filter((o) => o.kind === 'NetworkPolicy')
    .map((o) => o as unknown as INetworkPolicy)
    .filter((p) => {
      const types = p.spec?.policyTypes ?? ['Ingress', ...(p.spec?.egress ? ['Egress'] : [])];
      const sel = p.spec?.podSelector.matchLabels as Record<string, string> | undefined;
      // An empty podSelector selects every pod of the namespace.
      const all = !sel || Object.keys(sel).length === 0;
      return types.includes('Egress') && (all || selects(sel, labels));
    });
  if (policies.length === 0) return null;
  const peers: INetworkPolicyPeer[] = [];
  for (const p of policies) {
    for (const rule of p.spec?.egress ?? []) {
      const covers =
        !rule.ports ||
        rule.ports.length === 0 ||
        rule.ports.some((rp) => rp.port === port && (rp.protocol ?? 'TCP') === protocol);
      if (!covers) continue;
      if (!rule.to || rule.to.length === 0) return 'any';
      peers.push(...rule.to);
    }
  }
  return peers;
}

/**
 * When an egress policy applies to nodes or gateways, everything they must reach stays reachable:
 * DNS over UDP and TCP, their storage (PostgreSQL 5432, or Redis 6379 and Sentinel 26379), the
 * nodes' cluster port (standbys forward to the active node, gateways route to it) and the OTLP
 * collector's port; and on PostgreSQL no path to Redis' ports remains. Without these a policy
 * renders fine and the cluster never elects, routes or traces.
 */
export function egressProblems(objects: K8sObject[], expect: OverlayExpectations): string[] {
  const problems: string[] = [];
  for (const [labels] of ROLES) {
    const pod = rolePod(objects, labels);
    const to = (port: number, protocol: 'TCP' | 'UDP' = 'TCP') =>
      allowedEgress(objects, pod.labels, port, protocol);
    if (to(DNS_PORT) === null) {
      if (expect.restrictedEgress) problems.push(`${pod.owner}: no NetworkPolicy restricts its egress`);
      continue;
    }
    const blocked = (what: string, port: number, protocol: 'TCP' | 'UDP' = 'TCP') => {
      const peers = to(port, protocol);
      if (peers !== 'any' && (peers ?? []).length === 0)
        problems.push(`${pod.owner}: egress to ${what} (${protocol} ${port}) is blocked`);
    };
    blocked('DNS', DNS_PORT, 'UDP');
    blocked('DNS', DNS_PORT, 'TCP');
    if (expect.storage === 'postgresql') {
      blocked('PostgreSQL', POSTGRESQL_PORT);
      for (const port of [REDIS_PORT, SENTINEL_PORT]) {
        const peers = to(port);
        if (peers === 'any' || (peers ?? []).length > 0)
          problems.push(`${pod.owner}: egress to Redis' port ${port} is open on PostgreSQL`);
      }
    } else {
      blocked('Redis', REDIS_PORT);
      if (expect.redis === 'sentinel') blocked('Sentinel', SENTINEL_PORT);
    }
    const cluster = to(NODE_CLUSTER_PORT);
    const reachesNodes =
      cluster === 'any' ||
      (cluster ?? []).some(
        (p) =>
          !p.namespaceSelector && selects(p.podSelector?.matchLabels as Record<string, string>, NODE_LABELS),
      );
    if (!reachesNodes)
      problems.push(`${pod.owner}: egress to the nodes' cluster port ${NODE_CLUSTER_PORT} is blocked`);
    const otlp = new URL(envOf(objects, pod).OTEL_EXPORTER_OTLP_ENDPOINT ?? '');
    blocked('the OTLP collector', Number(otlp.port || (otlp.protocol === 'https:' ? 443 : 80)));
  }
  return problems;
}
