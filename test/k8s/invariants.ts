/**
 * What every rendered overlay must keep, as functions returning problems (an empty list means
 * the overlay keeps the rule). Each rule says why it exists; `manifests.test.ts` runs them on
 * every overlay and also on deliberately broken copies, so a rule that cannot fail is noticed.
 */
import type { IDeployment, IStatefulSet } from 'kubernetes-models/apps/v1';
import type { INetworkPolicy, INetworkPolicyPeer } from 'kubernetes-models/networking.k8s.io/v1';
import type { IPodDisruptionBudget } from 'kubernetes-models/policy/v1';
import type { IContainer, IProbe, IService } from 'kubernetes-models/v1';
import { gatewaySettings } from '../../gateway/settings';
import { nodeSettings } from '../../node/settings';
import { parseDuration, parseHostPort } from '../../shared/config/formats';
import { type GatewayConfig, gatewaySchema } from '../../shared/config/gateway-schema';
import { loadConfig, unknownEnvVars } from '../../shared/config/load';
import { type NodeConfig, nodeSchema } from '../../shared/config/node-schema';
import { signingKeyFromSeed } from '../../shared/crypto/signing';
import {
  containersOf,
  FAKE_POD_IP,
  type PodTemplate,
  podTemplates,
  resolveEnv,
  type SecretValues,
  selects,
} from './pods';
import type { K8sObject } from './render';

/** Labels of the two leaderway roles. */
export const NODE_LABELS = { 'app.kubernetes.io/name': 'leaderway', 'app.kubernetes.io/component': 'node' };
export const GATEWAY_LABELS = {
  'app.kubernetes.io/name': 'leaderway',
  'app.kubernetes.io/component': 'gateway',
};

export const NODE_API_PORT = 8200;
export const NODE_CLUSTER_PORT = 8201;
export const NODE_METRICS_PORT = 8202;
export const GATEWAY_PORT = 8300;
export const GATEWAY_METRICS_PORT = 8302;
export const REDIS_PORT = 6379;
export const SENTINEL_PORT = 26379;
export const OTLP_HTTP_PORT = 4318;

/** The Secrets k8s/scripts/make-secrets.sh creates (name/key), with valid stand-in values. */
export const SCRIPT_SECRETS: SecretValues = {
  'leaderway-seal/seal-key': Buffer.alloc(32, 1).toString('base64'),
  'leaderway-advertisement/keys': `${Buffer.alloc(32, 2).toString('base64')},${Buffer.alloc(32, 3).toString('base64')}`,
  'leaderway-signing/signing-key': Buffer.alloc(32, 4).toString('base64'),
  'leaderway-verify/verify-key': signingKeyFromSeed(Buffer.alloc(32, 4)).publicRaw.toString('base64'),
  'leaderway-redis-node/url': 'redis://leaderway-node:node-password@leaderway-redis:6379',
  'leaderway-redis-gateway/url': 'redis://leaderway-gateway:gateway-password@leaderway-redis:6379',
  'leaderway-redis-passwords/node-password': 'node-password-0123456789',
  'leaderway-redis-passwords/gateway-password': 'gateway-password-0123456789',
  'leaderway-redis-passwords/internal-password': 'internal-password-0123456789',
  'leaderway-redis-passwords/sentinel-password': 'sentinel-password-0123456789',
  'leaderway-redis-passwords/admin-password': 'admin-password-0123456789',
  'leaderway-gateway-ca/ca.crt': 'PEM',
  'leaderway-gateway-identity/tls.crt': 'PEM',
  'leaderway-gateway-identity/tls.key': 'PEM',
};

/**
 * The Secrets make-secrets.sh creates with `--postgresql-node-url`, `--postgresql-gateway-url` and
 * `--postgresql-ca` (instead of the Redis ones), with stand-in values: each role's URL with
 * sslmode=verify-full against the mounted CA, and the CA.
 */
export const POSTGRESQL_SCRIPT_SECRETS: SecretValues = {
  'leaderway-postgresql-node/url':
    'postgresql://leaderway:node-password@db.example.com:5432/leaderway?sslmode=verify-full&sslrootcert=/etc/leaderway/postgresql-ca/ca.crt',
  'leaderway-postgresql-gateway/url':
    'postgresql://leaderway_gateway:gateway-password@db.example.com:5432/leaderway?sslmode=verify-full&sslrootcert=/etc/leaderway/postgresql-ca/ca.crt',
  'leaderway-postgresql-ca/ca.crt': 'PEM',
};

/** Every Secret the script can create, whichever storage it was run for. */
export const KNOWN_SECRETS: SecretValues = { ...SCRIPT_SECRETS, ...POSTGRESQL_SCRIPT_SECRETS };

/** Secrets an operator (or cert-manager) creates, not the script: the gateway listener's certificate. */
const OPERATOR_SECRETS = ['leaderway-gateway-tls'];

/** What a gateway pod must never reference: node-only Secrets and variables. */
const NODE_ONLY = [
  'LEADERWAY_SEAL_KEY',
  'LEADERWAY_ADVERTISEMENT_SIGNING_KEY',
  '"leaderway-seal"',
  '"leaderway-signing"',
  '"leaderway-redis-node"',
  '"leaderway-redis-passwords"',
  '"leaderway-postgresql-node"',
];

/** What one overlay is expected to contain beyond the common rules. */
export interface OverlayExpectations {
  /**
   * Which Redis the overlay carries: the dev Redis StatefulSet (append-only), the replicated one
   * (components/redis-sentinel), or none (an existing managed Redis).
   */
  redis: false | 'single' | 'sentinel';
  /** Jaeger all-in-one is part of the overlay, and the OTLP endpoint points at it. */
  jaeger: boolean;
  /** Node anti-affinity is required (not just preferred). */
  requiredNodeAntiAffinity: boolean;
  /** Where nodes keep their data and lock, and gateways read it (storage-invariants.ts). */
  storage: 'redis' | 'postgresql';
  /** A NetworkPolicy restricts where nodes and gateways may connect (storage-invariants.ts). */
  restrictedEgress: boolean;
}

/** The pod template of a leaderway role (exactly one workload carries its labels). */
export function rolePod(objects: K8sObject[], labels: Record<string, string>): PodTemplate {
  const pods = podTemplates(objects).filter((p) => selects(labels, p.labels));
  if (pods.length !== 1)
    throw new Error(`expected one workload for ${JSON.stringify(labels)}, found ${pods.length}`);
  return pods[0] as PodTemplate;
}

/** The one container of a leaderway pod. */
export function mainContainer(pod: PodTemplate): IContainer {
  const c = pod.spec.containers[0];
  if (!c || pod.spec.containers.length !== 1) throw new Error(`${pod.owner}: expected exactly one container`);
  return c;
}

/** The container's environment resolved as the kubelet would (problems thrown). */
export function envOf(
  objects: K8sObject[],
  pod: PodTemplate,
  c: IContainer = mainContainer(pod),
): Record<string, string> {
  const r = resolveEnv(pod, c, objects, KNOWN_SECRETS);
  if (r.problems.length > 0) throw new Error(r.problems.join('\n'));
  return r.env;
}

/**
 * Every container, whatever it runs: resource requests and limits (a pod without limits can
 * starve its neighbours; without requests it is scheduled blind), readiness and liveness probes,
 * and a locked-down security context — non-root, read-only root filesystem, no privilege
 * escalation, every capability dropped.
 */
export function containerProblems(objects: K8sObject[]): string[] {
  const problems: string[] = [];
  for (const pod of podTemplates(objects)) {
    const podSc = pod.spec.securityContext ?? {};
    if (pod.spec.hostNetwork || pod.spec.hostPID || pod.spec.hostIPC)
      problems.push(`${pod.owner}: shares a host namespace`);
    for (const { where, c, init } of containersOf(pod)) {
      for (const kind of ['requests', 'limits'] as const) {
        for (const res of ['cpu', 'memory']) {
          if (c.resources?.[kind]?.[res] === undefined)
            problems.push(`${where}: no resources.${kind}.${res}`);
        }
      }
      if (!init) {
        if (!c.readinessProbe) problems.push(`${where}: no readinessProbe`);
        if (!c.livenessProbe) problems.push(`${where}: no livenessProbe`);
      }
      const sc = c.securityContext ?? {};
      const runAsNonRoot = sc.runAsNonRoot ?? podSc.runAsNonRoot;
      const runAsUser = sc.runAsUser ?? podSc.runAsUser;
      if (runAsNonRoot !== true) problems.push(`${where}: runAsNonRoot is not true`);
      if (runAsUser === undefined || runAsUser === 0) problems.push(`${where}: no non-zero runAsUser`);
      if (sc.readOnlyRootFilesystem !== true) problems.push(`${where}: readOnlyRootFilesystem is not true`);
      if (sc.allowPrivilegeEscalation !== false)
        problems.push(`${where}: allowPrivilegeEscalation is not false`);
      if (sc.privileged === true) problems.push(`${where}: privileged`);
      if (!(sc.capabilities?.drop ?? []).includes('ALL'))
        problems.push(`${where}: capabilities do not drop ALL`);
      if ((sc.capabilities?.add ?? []).length > 0) problems.push(`${where}: adds capabilities`);
    }
  }
  return problems;
}

/** Images are pinned: a tag on every image, never `latest`. */
export function imageProblems(objects: K8sObject[]): string[] {
  const problems: string[] = [];
  for (const pod of podTemplates(objects)) {
    for (const { where, c } of containersOf(pod)) {
      const image = c.image ?? '';
      const digest = image.includes('@sha256:');
      const tag = /:([^/:@]+)$/.exec(image.split('@')[0] ?? '')?.[1];
      if (!digest && (tag === undefined || tag === 'latest'))
        problems.push(`${where}: image "${image}" is not pinned`);
    }
  }
  return problems;
}

/** Secret-looking values: a base64 32-byte key, or a Redis or PostgreSQL URL carrying a password. */
const BASE64_KEY = /(^|[^A-Za-z0-9+/])[A-Za-z0-9+/]{43}=/;
const URL_WITH_PASSWORD = /(rediss?(\+sentinel)?|postgres(ql)?):\/\/[^\s/@]*:[^\s/@]+@/i;
/** Variables that hold secrets: they must come from a Secret, never inline. */
const SECRET_VARS = /(KEY|SECRET|TOKEN|PASSWORD|PASSWD|CREDENTIAL)S?$/;
const MUST_BE_SECRET_REFS = [
  'LEADERWAY_SEAL_KEY',
  'LEADERWAY_ADVERTISEMENT_KEY',
  'LEADERWAY_REDIS_URL',
  'LEADERWAY_HA_REDIS_URL',
  'LEADERWAY_POSTGRESQL_URL',
  'LEADERWAY_HA_POSTGRESQL_URL',
];

/**
 * No secret value in the rendered output: no Secret object at all (make-secrets.sh creates them
 * in the cluster), secrets reach containers only through secretKeyRef, and no string anywhere
 * looks like a key or a password-bearing URL.
 */
export function secretProblems(objects: K8sObject[]): string[] {
  const problems: string[] = [];
  for (const o of objects) {
    if (o.kind === 'Secret')
      problems.push(`Secret/${o.metadata.name} is rendered: create it with k8s/scripts/make-secrets.sh`);
    walkStrings(o, `${o.kind}/${o.metadata.name}`, (where, s) => {
      if (BASE64_KEY.test(s)) problems.push(`${where}: looks like an inline key`);
      if (URL_WITH_PASSWORD.test(s)) problems.push(`${where}: a URL with a password`);
    });
  }
  const scriptSecrets = new Set(Object.keys(KNOWN_SECRETS).map((ref) => ref.split('/')[0]));
  for (const pod of podTemplates(objects)) {
    for (const v of pod.spec.volumes ?? []) {
      const name = v.secret?.secretName;
      if (name && !scriptSecrets.has(name) && !OPERATOR_SECRETS.includes(name))
        problems.push(`${pod.owner}: volume ${v.name} mounts Secret ${name}, which nothing creates`);
      for (const item of v.secret?.items ?? []) {
        if (name && scriptSecrets.has(name) && !(`${name}/${item.key}` in KNOWN_SECRETS))
          problems.push(`${pod.owner}: Secret ${name} has no key ${item.key}`);
      }
    }
    for (const { where, c } of containersOf(pod)) {
      for (const v of c.env ?? []) {
        const isSecret = SECRET_VARS.test(v.name) || MUST_BE_SECRET_REFS.includes(v.name);
        if (isSecret && !v.valueFrom?.secretKeyRef)
          problems.push(`${where}: ${v.name} must come from a secretKeyRef`);
      }
    }
  }
  return problems;
}

function walkStrings(v: unknown, where: string, visit: (where: string, s: string) => void): void {
  if (typeof v === 'string') visit(where, v);
  else if (Array.isArray(v)) {
    for (const [i, x] of v.entries()) walkStrings(x, `${where}[${i}]`, visit);
  } else if (v && typeof v === 'object') {
    for (const [k, x] of Object.entries(v)) walkStrings(x, `${where}.${k}`, visit);
  }
}

/**
 * The environment of every leaderway container is one its command accepts: it validates against
 * the convict schema (and the cross-field rules) and has no unknown LEADERWAY_ variable — a typo
 * would otherwise only be a warning in the pod's log. The gateway must not see the seal key.
 * `roles` limits the schema validation to some roles (the node-only references are always checked).
 */
export async function leaderwayEnvProblems(
  objects: K8sObject[],
  roles: ReadonlyArray<'server' | 'gateway'> = ['server', 'gateway'],
): Promise<string[]> {
  const problems: string[] = [];
  for (const [labels, role] of [
    [NODE_LABELS, 'server'],
    [GATEWAY_LABELS, 'gateway'],
  ] as const) {
    if (!roles.includes(role)) continue;
    const pod = rolePod(objects, labels);
    const c = mainContainer(pod);
    const where = `${pod.owner} container ${c.name}`;
    if ((c.args ?? [])[0] !== role) problems.push(`${where}: args must start with "${role}"`);
    if (pod.spec.enableServiceLinks !== false)
      problems.push(`${where}: enableServiceLinks must be false (it injects LEADERWAY_*_PORT variables)`);
    const r = resolveEnv(pod, c, objects, KNOWN_SECRETS);
    problems.push(...r.problems);
    const schema = role === 'server' ? nodeSchema : gatewaySchema;
    const unknown = unknownEnvVars([schema], r.env, role === 'server' ? ['LEADERWAY_DEV_ROOT_TOKEN'] : []);
    if (unknown.length > 0) problems.push(`${where}: unknown LEADERWAY_ variables: ${unknown.join(', ')}`);
    try {
      if (role === 'server')
        nodeSettings(await loadConfig<NodeConfig>(nodeSchema, { env: r.env, useConfigFile: false }));
      else
        gatewaySettings(
          await loadConfig<GatewayConfig>(gatewaySchema, {
            env: r.env,
            useConfigFile: false,
            forbiddenEnv: {
              LEADERWAY_SEAL_KEY: 'the gateway holds only the advertisement key',
              LEADERWAY_ADVERTISEMENT_SIGNING_KEY: 'gateways verify advertisements, never sign them',
            },
          }),
        );
    } catch (err) {
      problems.push(`${where}: configuration rejected: ${(err as Error).message}`);
    }
  }
  const gateway = rolePod(objects, GATEWAY_LABELS);
  const text = JSON.stringify(gateway.spec);
  for (const needle of NODE_ONLY)
    if (text.includes(needle))
      problems.push(`${gateway.owner}: references ${needle}, which only nodes may hold`);
  return problems;
}

/** The gateway Service (type LoadBalancer) that the load balancer targets. */
export function gatewayService(objects: K8sObject[]): IService & K8sObject {
  const svcs = objects.filter(
    (o) => o.kind === 'Service' && selects((o as unknown as IService).spec?.selector, GATEWAY_LABELS),
  ) as Array<IService & K8sObject>;
  if (svcs.length !== 1) throw new Error(`expected one Service selecting the gateways, found ${svcs.length}`);
  return svcs[0] as IService & K8sObject;
}

/**
 * The nodes' VAULT_API_ADDR is the URL of the gateway Service: its external DNS name (the
 * external-dns annotation) or its in-cluster name, one of its ports, and https when the gateway
 * serves TLS (or an external load balancer terminates it). Anything else sends clients following a 307 somewhere that is not the
 * gateway, and sys/leader would report an address nobody can use.
 */
export function apiAddrProblems(objects: K8sObject[]): string[] {
  const problems: string[] = [];
  const node = rolePod(objects, NODE_LABELS);
  const apiAddr = envOf(objects, node).VAULT_API_ADDR ?? '';
  const svc = gatewayService(objects);
  const gwEnv = envOf(objects, rolePod(objects, GATEWAY_LABELS));
  let url: URL;
  try {
    url = new URL(apiAddr);
  } catch {
    return [`${node.owner}: VAULT_API_ADDR "${apiAddr}" is not a URL`];
  }
  const name = svc.metadata.name;
  const ns = svc.metadata.namespace ?? 'default';
  const external = (svc.metadata.annotations?.['external-dns.alpha.kubernetes.io/hostname'] ?? '')
    .split(',')
    .map((h) => h.trim())
    .filter(Boolean);
  const hosts = [...external, name, `${name}.${ns}`, `${name}.${ns}.svc`, `${name}.${ns}.svc.cluster.local`];
  if (!hosts.includes(url.hostname))
    problems.push(
      `${node.owner}: VAULT_API_ADDR host "${url.hostname}" is not the gateway Service (${hosts.join(', ')})`,
    );
  const port = Number(url.port || (url.protocol === 'https:' ? 443 : 80));
  const ports = (svc.spec?.ports ?? []).map((p) => p.port);
  if (!ports.includes(port))
    problems.push(`${node.owner}: VAULT_API_ADDR port ${port} is not a gateway Service port (${ports})`);
  // A TLS listener needs https. An https URL in front of a plain gateway is right only when an
  // external load balancer terminates TLS, i.e. the URL names the external hostname.
  const tls = (gwEnv.LEADERWAY_TLS_CERT_FILE ?? '') !== '';
  if (tls && url.protocol !== 'https:')
    problems.push(`${node.owner}: VAULT_API_ADDR is ${url.protocol} but the gateway serves TLS`);
  if (!tls && url.protocol === 'https:' && !external.includes(url.hostname))
    problems.push(
      `${node.owner}: VAULT_API_ADDR is https but neither the gateway nor an external load balancer serves TLS`,
    );
  if (svc.spec?.type !== 'LoadBalancer') problems.push(`Service/${name}: type must be LoadBalancer`);
  return problems;
}

function probePath(p: IProbe | undefined): string | undefined {
  return p?.httpGet?.path;
}

/**
 * The nodes: 3 replicas started in parallel (before init none is Ready, so OrderedReady would
 * never start the second), the cluster address built from the pod IP, readiness on
 * sys/health?standbyok=true, a liveness probe that answers 200 in every state (a restart cures
 * neither sealed nor uninitialized), anti-affinity, a PDB, a headless Service for the cluster
 * port, and a grace period that covers the shutdown timeout plus a lock TTL of storage calls.
 */
export function nodeProblems(objects: K8sObject[], expect: OverlayExpectations): string[] {
  const problems: string[] = [];
  const pod = rolePod(objects, NODE_LABELS);
  const sts = objects.find((o) => `${o.kind}/${o.metadata.name}` === pod.owner) as unknown as IStatefulSet;
  const c = mainContainer(pod);
  const env = envOf(objects, pod);
  if (pod.kind !== 'StatefulSet') problems.push(`${pod.owner}: nodes must be a StatefulSet`);
  if (pod.replicas !== 3) problems.push(`${pod.owner}: replicas ${pod.replicas}, expected 3`);
  if (sts.spec?.podManagementPolicy !== 'Parallel')
    problems.push(`${pod.owner}: podManagementPolicy must be Parallel`);
  if (env.VAULT_CLUSTER_ADDR !== `https://${FAKE_POD_IP}:${NODE_CLUSTER_PORT}`)
    problems.push(`${pod.owner}: VAULT_CLUSTER_ADDR must be https://$(POD_IP):${NODE_CLUSTER_PORT}`);
  if (!(c.ports ?? []).some((p) => p.containerPort === NODE_CLUSTER_PORT))
    problems.push(`${pod.owner}: no container port ${NODE_CLUSTER_PORT}`);
  if (probePath(c.readinessProbe) !== '/v1/sys/health?standbyok=true')
    problems.push(`${pod.owner}: readiness must be /v1/sys/health?standbyok=true`);
  const live = new URL(probePath(c.livenessProbe) ?? '/', 'http://x');
  const alwaysOk =
    live.pathname === '/v1/sys/health' &&
    live.searchParams.get('standbyok') === 'true' &&
    live.searchParams.get('sealedcode') === '200' &&
    live.searchParams.get('uninitcode') === '200';
  if (!alwaysOk)
    problems.push(
      `${pod.owner}: liveness must be /v1/sys/health?standbyok=true&sealedcode=200&uninitcode=200`,
    );
  const anti = pod.spec.affinity?.podAntiAffinity;
  const required = (anti?.requiredDuringSchedulingIgnoredDuringExecution ?? []).some(
    (t) => t.topologyKey === 'kubernetes.io/hostname' && selects(t.labelSelector?.matchLabels, pod.labels),
  );
  const preferred = (anti?.preferredDuringSchedulingIgnoredDuringExecution ?? []).some(
    (t) =>
      t.podAffinityTerm.topologyKey === 'kubernetes.io/hostname' &&
      selects(t.podAffinityTerm.labelSelector?.matchLabels, pod.labels),
  );
  if (expect.requiredNodeAntiAffinity ? !required : !(required || preferred))
    problems.push(
      `${pod.owner}: ${expect.requiredNodeAntiAffinity ? 'required ' : ''}anti-affinity on kubernetes.io/hostname missing`,
    );
  const headless = objects.some((o) => {
    const s = o as unknown as IService;
    return (
      o.kind === 'Service' &&
      s.spec?.clusterIP === 'None' &&
      o.metadata.name === sts.spec?.serviceName &&
      selects(s.spec?.selector, pod.labels) &&
      (s.spec?.ports ?? []).some((p) => p.port === NODE_CLUSTER_PORT)
    );
  });
  if (!headless) problems.push(`${pod.owner}: no headless Service (its serviceName) with the cluster port`);
  problems.push(...pdbProblems(objects, pod));
  const shutdownMs = parseDuration(env.LEADERWAY_SHUTDOWN_TIMEOUT ?? nodeSchema.shutdown_timeout.default);
  const ttlMs = parseDuration(env.LEADERWAY_LOCK_TTL ?? nodeSchema.lock_ttl.default);
  const grace = pod.spec.terminationGracePeriodSeconds ?? 30;
  if (grace * 1000 < preStopSeconds(c) * 1000 + shutdownMs + ttlMs)
    problems.push(`${pod.owner}: terminationGracePeriodSeconds ${grace} < shutdown timeout + lock TTL`);
  return problems;
}

function preStopSeconds(c: IContainer): number {
  const preStop = c.lifecycle?.preStop as
    | { exec?: { command?: string[] }; sleep?: { seconds?: number } }
    | undefined;
  if (preStop?.sleep?.seconds !== undefined) return preStop.sleep.seconds;
  const cmd = preStop?.exec?.command ?? [];
  if (cmd.length === 2 && /^(\/bin\/|\/usr\/bin\/)?sleep$/.test(cmd[0] ?? '') && /^\d+$/.test(cmd[1] ?? ''))
    return Number(cmd[1]);
  return 0;
}

function pdbProblems(objects: K8sObject[], pod: PodTemplate): string[] {
  const pdbs = objects.filter(
    (o) =>
      o.kind === 'PodDisruptionBudget' &&
      selects((o as unknown as IPodDisruptionBudget).spec?.selector?.matchLabels, pod.labels),
  );
  return pdbs.length === 1 ? [] : [`${pod.owner}: expected one PodDisruptionBudget, found ${pdbs.length}`];
}

/**
 * The gateways: 2 or more, readiness on /-/ready (this gateway can route and is not draining),
 * liveness on /-/live, probes speaking TLS when the listener does, a PDB, and a grace period that
 * fits preStop sleep + LEADERWAY_DRAIN_DELAY + LEADERWAY_SHUTDOWN_TIMEOUT — otherwise the kubelet
 * kills the gateway while it still drains.
 */
export function gatewayProblems(objects: K8sObject[]): string[] {
  const problems: string[] = [];
  const pod = rolePod(objects, GATEWAY_LABELS);
  const c = mainContainer(pod);
  const env = envOf(objects, pod);
  if (pod.kind !== 'Deployment') problems.push(`${pod.owner}: gateways must be a Deployment`);
  if (pod.replicas < 2) problems.push(`${pod.owner}: replicas ${pod.replicas}, expected 2 or more`);
  if (probePath(c.readinessProbe) !== '/-/ready') problems.push(`${pod.owner}: readiness must be /-/ready`);
  if (probePath(c.livenessProbe) !== '/-/live') problems.push(`${pod.owner}: liveness must be /-/live`);
  const scheme = (env.LEADERWAY_TLS_CERT_FILE ?? '') !== '' ? 'HTTPS' : 'HTTP';
  for (const [name, p] of [
    ['readiness', c.readinessProbe],
    ['liveness', c.livenessProbe],
  ] as const) {
    if ((p?.httpGet?.scheme ?? 'HTTP') !== scheme)
      problems.push(`${pod.owner}: ${name} probe must use ${scheme}`);
  }
  const sleep = preStopSeconds(c);
  if (sleep <= 0) problems.push(`${pod.owner}: no preStop sleep`);
  const drainMs = parseDuration(env.LEADERWAY_DRAIN_DELAY ?? gatewaySchema.drain_delay.default);
  const shutdownMs = parseDuration(env.LEADERWAY_SHUTDOWN_TIMEOUT ?? gatewaySchema.shutdown_timeout.default);
  const grace = pod.spec.terminationGracePeriodSeconds ?? 30;
  if (grace * 1000 < sleep * 1000 + drainMs + shutdownMs)
    problems.push(
      `${pod.owner}: terminationGracePeriodSeconds ${grace} < preStop ${sleep}s + drain ${drainMs}ms + shutdown ${shutdownMs}ms`,
    );
  const svc = gatewayService(objects);
  for (const p of svc.spec?.ports ?? []) {
    const target = p.targetPort ?? p.port;
    const ok = (c.ports ?? []).some(
      (cp) =>
        (typeof target === 'number' ? cp.containerPort === target : cp.name === target) &&
        cp.containerPort === GATEWAY_PORT,
    );
    if (!ok)
      problems.push(
        `Service/${svc.metadata.name}: port ${p.port} does not reach the gateway's ${GATEWAY_PORT}`,
      );
  }
  problems.push(...pdbProblems(objects, pod));
  return problems;
}

/**
 * OpenTelemetry on every leaderway pod, through the standard variables only: the role's
 * service name, an OTLP endpoint, and resource attributes with every `$(VAR)` resolved. With
 * Jaeger in the overlay, the endpoint is its OTLP/HTTP port.
 */
export function otelProblems(objects: K8sObject[], expect: OverlayExpectations): string[] {
  const problems: string[] = [];
  for (const [labels, service] of [
    [NODE_LABELS, 'leaderway-node'],
    [GATEWAY_LABELS, 'leaderway-gateway'],
  ] as const) {
    const pod = rolePod(objects, labels);
    const env = envOf(objects, pod);
    if (env.OTEL_SERVICE_NAME !== service)
      problems.push(`${pod.owner}: OTEL_SERVICE_NAME must be ${service}`);
    const attrs = env.OTEL_RESOURCE_ATTRIBUTES ?? '';
    if (!attrs.includes('service.instance.id=') || attrs.includes('$('))
      problems.push(`${pod.owner}: OTEL_RESOURCE_ATTRIBUTES incomplete: "${attrs}"`);
    let endpoint: URL | null = null;
    try {
      endpoint = new URL(env.OTEL_EXPORTER_OTLP_ENDPOINT ?? '');
    } catch {
      problems.push(`${pod.owner}: OTEL_EXPORTER_OTLP_ENDPOINT is not a URL`);
    }
    if (endpoint && expect.jaeger) {
      const jaeger = objects.find(
        (o) =>
          o.kind === 'Service' &&
          o.metadata.name === endpoint?.hostname &&
          ((o as unknown as IService).spec?.ports ?? []).some((p) => p.port === Number(endpoint?.port)),
      );
      if (!jaeger || Number(endpoint.port) !== OTLP_HTTP_PORT)
        problems.push(
          `${pod.owner}: OTEL_EXPORTER_OTLP_ENDPOINT does not reach the Jaeger Service on ${OTLP_HTTP_PORT}`,
        );
    }
  }
  return problems;
}

/**
 * Metrics: every leaderway container serves them on a metrics listener (LEADERWAY_METRICS_ADDR)
 * whose port is its container port named `metrics`, and not anonymously on its API listener
 * (no LEADERWAY_UNAUTHENTICATED_METRICS_ACCESS=true); no Service exposes that port — the
 * gateways' is the load balancer's, and anything in a Service is one step from the outside; and
 * NetworkPolicies let pods of the cluster (Prometheus) reach it, never any source or an ipBlock.
 */
export function metricsProblems(objects: K8sObject[]): string[] {
  const problems: string[] = [];
  for (const [labels, expected] of [
    [NODE_LABELS, NODE_METRICS_PORT],
    [GATEWAY_LABELS, GATEWAY_METRICS_PORT],
  ] as const) {
    const pod = rolePod(objects, labels);
    const c = mainContainer(pod);
    const env = envOf(objects, pod);
    const addr = parseHostPort(env.LEADERWAY_METRICS_ADDR ?? '');
    const named = (c.ports ?? []).find((p) => p.name === 'metrics');
    if (!addr) problems.push(`${pod.owner}: no metrics listener (LEADERWAY_METRICS_ADDR)`);
    else if (!named || named.containerPort !== addr.port)
      problems.push(`${pod.owner}: LEADERWAY_METRICS_ADDR's port is not the container port named "metrics"`);
    else if (addr.port !== expected)
      problems.push(`${pod.owner}: metrics port ${addr.port}, expected ${expected}`);
    if ((env.LEADERWAY_UNAUTHENTICATED_METRICS_ACCESS ?? '').toLowerCase() === 'true')
      problems.push(
        `${pod.owner}: LEADERWAY_UNAUTHENTICATED_METRICS_ACCESS makes the API port serve metrics to anyone`,
      );
    const metricsPort = named?.containerPort ?? expected;
    for (const o of objects) {
      const svc = o as unknown as IService;
      if (o.kind !== 'Service' || !selects(svc.spec?.selector, pod.labels)) continue;
      for (const p of svc.spec?.ports ?? []) {
        const target = p.targetPort ?? p.port;
        if (target === 'metrics' || target === metricsPort)
          problems.push(`Service/${o.metadata.name}: exposes the metrics port of ${pod.owner}`);
      }
    }
    const peers = allowedPeers(objects, labels, metricsPort);
    if (peers === 'any') problems.push(`${pod.owner}: metrics port ${metricsPort} is open to any source`);
    else if (peers !== null && peers.length === 0)
      problems.push(`${pod.owner}: no NetworkPolicy lets Prometheus reach metrics port ${metricsPort}`);
    else if (peers?.some((p) => p.ipBlock))
      problems.push(`${pod.owner}: metrics port ${metricsPort} is open to an ipBlock`);
  }
  return problems;
}

/** The PodMonitors (components/monitoring) scrape each role's /metrics on its `metrics` port. */
export function podMonitorProblems(objects: K8sObject[]): string[] {
  const problems: string[] = [];
  for (const labels of [NODE_LABELS, GATEWAY_LABELS]) {
    const monitors = objects.filter(
      (o) =>
        o.kind === 'PodMonitor' &&
        selects(
          (o.spec as { selector?: { matchLabels?: Record<string, string> } })?.selector?.matchLabels,
          labels,
        ),
    );
    if (monitors.length !== 1) {
      problems.push(`expected one PodMonitor for ${JSON.stringify(labels)}, found ${monitors.length}`);
      continue;
    }
    const m = monitors[0] as K8sObject;
    const endpoints = (m.spec as { podMetricsEndpoints?: Array<{ port?: string; path?: string }> })
      .podMetricsEndpoints;
    for (const e of endpoints ?? [])
      if (e.port !== 'metrics' || e.path !== '/metrics')
        problems.push(
          `PodMonitor/${m.metadata.name}: scrapes port ${e.port} path ${e.path}, not metrics /metrics`,
        );
    if (!endpoints?.length) problems.push(`PodMonitor/${m.metadata.name}: no endpoint`);
  }
  return problems;
}

/** Who may connect to pods labelled `labels` on `port`: "any", or the peers allowed. */
export function allowedPeers(
  objects: K8sObject[],
  labels: Record<string, string>,
  port: number,
): 'any' | INetworkPolicyPeer[] | null {
  const policies = objects.filter(
    (o) =>
      o.kind === 'NetworkPolicy' &&
      (((o as unknown as INetworkPolicy).spec?.policyTypes ?? ['Ingress']).includes('Ingress') as boolean) &&
      selects((o as unknown as INetworkPolicy).spec?.podSelector.matchLabels, labels),
  ) as unknown as INetworkPolicy[];
  if (policies.length === 0) return null; // not isolated: everyone may connect
  const peers: INetworkPolicyPeer[] = [];
  for (const p of policies) {
    for (const rule of p.spec?.ingress ?? []) {
      const covers = !rule.ports || rule.ports.length === 0 || rule.ports.some((rp) => rp.port === port);
      if (!covers) continue;
      if (!rule.from || rule.from.length === 0) return 'any';
      peers.push(...rule.from);
    }
  }
  return peers;
}

/**
 * NetworkPolicies: only nodes and gateways reach the nodes' cluster port (it serves forwarded
 * requests to whoever holds the advertised certificate; no one else needs a path to it), only
 * nodes and gateways reach Redis, and the gateways' port is reachable (the load balancer).
 */
export function networkPolicyProblems(objects: K8sObject[], expect: OverlayExpectations): string[] {
  const problems: string[] = [];
  const onlyNodesAndGateways = (
    what: string,
    labels: Record<string, string>,
    port: number,
    /** Pods of its own that may reach it too (Redis replication and Sentinel gossip). */
    self = false,
  ) => {
    const peers = allowedPeers(objects, labels, port);
    if (peers === null) return problems.push(`${what}: no NetworkPolicy isolates it`);
    if (peers === 'any') return problems.push(`${what}: port ${port} is open to any source`);
    const kinds = new Set<string>();
    for (const peer of peers) {
      const sel = peer.podSelector?.matchLabels as Record<string, string> | undefined;
      if (peer.ipBlock || peer.namespaceSelector || !sel) {
        problems.push(`${what}: port ${port} allows ${JSON.stringify(peer)}`);
      } else if (self && selects(sel, labels)) kinds.add('self');
      else if (selects(sel, NODE_LABELS) && !selects(sel, GATEWAY_LABELS)) kinds.add('node');
      else if (selects(sel, GATEWAY_LABELS) && !selects(sel, NODE_LABELS)) kinds.add('gateway');
      else problems.push(`${what}: port ${port} allows pods ${JSON.stringify(sel)}`);
    }
    if (!kinds.has('node') || !kinds.has('gateway'))
      problems.push(`${what}: port ${port} must allow nodes and gateways`);
    return 0;
  };
  onlyNodesAndGateways('nodes', NODE_LABELS, NODE_CLUSTER_PORT);
  const nodeApi = allowedPeers(objects, NODE_LABELS, NODE_API_PORT);
  if (nodeApi === 'any') problems.push(`nodes: API port ${NODE_API_PORT} is open to any source`);
  if (expect.redis) {
    const redis = redisPod(objects);
    const sentinel = expect.redis === 'sentinel';
    if (redis) onlyNodesAndGateways('redis', redis.labels, REDIS_PORT, sentinel);
    if (redis && sentinel) onlyNodesAndGateways('sentinel', redis.labels, SENTINEL_PORT, true);
  }
  const gw = allowedPeers(objects, GATEWAY_LABELS, GATEWAY_PORT);
  if (gw === null) problems.push('gateways: no NetworkPolicy isolates them');
  else if (gw !== 'any' && gw.length === 0) problems.push(`gateways: nothing may reach port ${GATEWAY_PORT}`);
  return problems;
}

function redisPod(objects: K8sObject[]): PodTemplate | undefined {
  return podTemplates(objects).find((p) =>
    p.spec.containers.some((c) => /(^|\/)redis[:@]/.test(c.image ?? '')),
  );
}

/**
 * Which extras the overlay carries. Dev: a Redis StatefulSet with append-only persistence and
 * Jaeger all-in-one (OTLP 4318, UI 16686). Production: neither — it uses a managed Redis or
 * Sentinel and an existing collector.
 */
export function extrasProblems(objects: K8sObject[], expect: OverlayExpectations): string[] {
  const problems: string[] = [];
  const redis = redisPod(objects);
  if (expect.redis) {
    if (!redis) problems.push('no Redis workload');
    else {
      const c = redis.spec.containers[0] as IContainer;
      const args = [...(c.command ?? []), ...(c.args ?? [])].join(' ');
      if (redis.kind !== 'StatefulSet') problems.push(`${redis.owner}: must be a StatefulSet`);
      if (!/--appendonly yes\b/.test(args)) problems.push(`${redis.owner}: append-only persistence is off`);
      const sts = objects.find(
        (o) => `${o.kind}/${o.metadata.name}` === redis.owner,
      ) as unknown as IStatefulSet;
      const mounts = (c.volumeMounts ?? []).map((m) => m.name);
      const claims = (sts.spec?.volumeClaimTemplates ?? []).map((t) => t.metadata?.name);
      if (!mounts.some((m) => claims.includes(m)))
        problems.push(`${redis.owner}: data is not on a persistent volume`);
      if (expect.redis === 'sentinel') problems.push(...sentinelProblems(objects, redis, sts, args));
    }
  } else if (redis) problems.push(`${redis.owner}: this overlay must use an existing Redis`);
  const jaeger = podTemplates(objects).find((p) =>
    p.spec.containers.some((c) => /jaegertracing\//.test(c.image ?? '')),
  );
  if (expect.jaeger) {
    const ports = (jaeger?.spec.containers[0]?.ports ?? []).map((p) => p.containerPort);
    if (!jaeger) problems.push('no Jaeger workload');
    else if (!ports.includes(OTLP_HTTP_PORT) || !ports.includes(16686))
      problems.push(`${jaeger.owner}: must expose OTLP/HTTP ${OTLP_HTTP_PORT} and the UI 16686`);
  } else if (jaeger) problems.push(`${jaeger.owner}: this overlay must use an existing collector`);
  return problems;
}

/**
 * The replicated Redis: three data servers each with a Sentinel, one per machine, at most one
 * evicted at a time, and an isolated primary refusing writes (min-replicas-to-write).
 */
function sentinelProblems(
  objects: K8sObject[],
  redis: PodTemplate,
  sts: IStatefulSet,
  args: string,
): string[] {
  const problems: string[] = [];
  if ((sts.spec?.replicas ?? 1) < 3) problems.push(`${redis.owner}: fewer than 3 Redis pods`);
  if (!/--min-replicas-to-write [1-9]/.test(args))
    problems.push(`${redis.owner}: min-replicas-to-write is not set`);
  if (!redis.spec.containers.some((c) => (c.ports ?? []).some((p) => p.containerPort === SENTINEL_PORT)))
    problems.push(`${redis.owner}: no Sentinel`);
  const anti = redis.spec.affinity?.podAntiAffinity?.requiredDuringSchedulingIgnoredDuringExecution ?? [];
  if (!anti.some((t) => t.topologyKey === 'kubernetes.io/hostname'))
    problems.push(`${redis.owner}: Redis pods may share a machine (no required anti-affinity)`);
  problems.push(...pdbProblems(objects, redis));
  return problems;
}

/** Every Service, PDB and NetworkPolicy selects at least one pod template (labels typo guard). */
export function selectorProblems(objects: K8sObject[]): string[] {
  const pods = podTemplates(objects);
  const problems: string[] = [];
  for (const o of objects) {
    let sel: Record<string, string> | undefined;
    if (o.kind === 'Service') sel = (o as unknown as IService).spec?.selector;
    else if (o.kind === 'PodDisruptionBudget')
      sel = (o as unknown as IPodDisruptionBudget).spec?.selector?.matchLabels as Record<string, string>;
    else if (o.kind === 'NetworkPolicy')
      sel = (o as unknown as INetworkPolicy).spec?.podSelector.matchLabels as Record<string, string>;
    else if (o.kind === 'Deployment' || o.kind === 'StatefulSet') {
      const w = o as unknown as IDeployment;
      if (
        !selects(
          w.spec?.selector.matchLabels as Record<string, string>,
          (w.spec?.template.metadata?.labels ?? {}) as Record<string, string>,
        )
      )
        problems.push(`${o.kind}/${o.metadata.name}: selector does not match its own template`);
      continue;
    } else continue;
    if (!pods.some((p) => selects(sel, p.labels)))
      problems.push(`${o.kind}/${o.metadata.name}: selects no pod`);
  }
  return problems;
}
