/**
 * The Kubernetes manifests: every overlay renders offline with `kubectl kustomize`, every object
 * validates against the Kubernetes schemas (kubernetes-models), and the invariants in
 * `invariants.ts` hold. The last suite breaks a rendered overlay on purpose and checks each rule
 * notices, so a rule that cannot fail does not go unseen.
 *
 * Needs kubectl (with its built-in kustomize); without it the suites are skipped with a message.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import * as path from 'node:path';
import { before, describe, test } from 'node:test';
import type { IDeployment, IStatefulSet } from 'kubernetes-models/apps/v1';
import type { IConfigMap, IContainer, IService } from 'kubernetes-models/v1';
import { gatewaySchema } from '../../shared/config/gateway-schema';
import { schemaEntries } from '../../shared/config/load';
import {
  apiAddrProblems,
  containerProblems,
  extrasProblems,
  GATEWAY_LABELS,
  gatewayProblems,
  imageProblems,
  leaderwayEnvProblems,
  metricsProblems,
  NODE_LABELS,
  networkPolicyProblems,
  nodeProblems,
  type OverlayExpectations,
  otelProblems,
  podMonitorProblems,
  rolePod,
  secretProblems,
  selectorProblems,
} from './invariants';
import { broken, catches } from './mutations';
import {
  type K8sObject,
  kubectlMissing,
  OVERLAYS_DIR,
  overlayNames,
  parseDocuments,
  ROOT,
  render,
  schemaProblems,
} from './render';
import { egressProblems, storageProblems } from './storage-invariants';

/** Every overlay under k8s/overlays must be listed here (a new one fails until it is). */
const EXPECTATIONS: Record<string, OverlayExpectations> = {
  dev: {
    redis: 'single',
    jaeger: true,
    requiredNodeAntiAffinity: false,
    storage: 'redis',
    restrictedEgress: false,
  },
  production: {
    redis: false,
    jaeger: false,
    requiredNodeAntiAffinity: true,
    storage: 'redis',
    restrictedEgress: false,
  },
  'production-sentinel': {
    redis: 'sentinel',
    jaeger: false,
    requiredNodeAntiAffinity: true,
    storage: 'redis',
    restrictedEgress: false,
  },
  'production-postgresql': {
    redis: false,
    jaeger: false,
    requiredNodeAntiAffinity: true,
    storage: 'postgresql',
    restrictedEgress: true,
  },
};

/**
 * Gateways read PostgreSQL once their schema knows LEADERWAY_STORAGE (work in progress on another
 * branch). Until then a PostgreSQL overlay's gateway environment cannot pass the gateway's config
 * validation: that check is reported as a todo instead of failing, and runs by itself once the
 * schema has the variable. The nodes' environment is always validated.
 */
const GATEWAY_READS_POSTGRESQL = schemaEntries(gatewaySchema).some(
  (e) => e.entry.env === 'LEADERWAY_STORAGE',
);

const skip = kubectlMissing() ?? false;

function rendered(name: string): K8sObject[] {
  return render(path.join(OVERLAYS_DIR, name));
}

describe('k8s overlays', { skip }, () => {
  test('every overlay has expectations', () => {
    assert.deepEqual(overlayNames(), Object.keys(EXPECTATIONS).sort());
  });

  for (const name of Object.keys(EXPECTATIONS)) {
    const expect = EXPECTATIONS[name] as OverlayExpectations;
    describe(`overlay ${name}`, () => {
      let objects: K8sObject[] = [];
      before(() => {
        objects = rendered(name);
      });

      test('renders and every object validates against the Kubernetes schemas', () => {
        assert.ok(objects.length > 0);
        assert.deepEqual(schemaProblems(objects), []);
      });
      test('every container has resources, probes and a locked-down security context', () => {
        assert.deepEqual(containerProblems(objects), []);
      });
      test('no Secret object and no secret value inline; secrets come from secretKeyRef', () => {
        assert.deepEqual(secretProblems(objects), []);
      });
      if (expect.storage === 'postgresql' && !GATEWAY_READS_POSTGRESQL) {
        test("the nodes' environment passes their config validation, no seal key on gateways", async () => {
          assert.deepEqual(await leaderwayEnvProblems(objects, ['server']), []);
        });
        test("the gateways' environment passes their config validation", {
          todo: 'the gateway schema has no LEADERWAY_STORAGE yet (gateways reading PostgreSQL)',
        }, async () => {
          assert.deepEqual(await leaderwayEnvProblems(objects, ['gateway']), []);
        });
      } else {
        test("the nodes' and gateways' environment passes their config validation, no seal key on gateways", async () => {
          assert.deepEqual(await leaderwayEnvProblems(objects), []);
        });
      }
      test("node pods' VAULT_API_ADDR is the gateway Service's URL", () => {
        assert.deepEqual(apiAddrProblems(objects), []);
      });
      test('nodes: StatefulSet of 3, probes, anti-affinity, PDB, headless Service, grace period', () => {
        assert.deepEqual(nodeProblems(objects, expect), []);
      });
      test('gateways: probes, preStop + drain + shutdown fit the grace period, LoadBalancer, PDB', () => {
        assert.deepEqual(gatewayProblems(objects), []);
      });
      test('OTEL_* variables on every leaderway pod', () => {
        assert.deepEqual(otelProblems(objects, expect), []);
      });
      test('NetworkPolicies: cluster port and Redis only from nodes and gateways', () => {
        assert.deepEqual(networkPolicyProblems(objects, expect), []);
      });
      test(`storage: ${expect.storage}, each role's URL from its own Secret${expect.storage === 'postgresql' ? ', no Redis, the server CA mounted' : ''}`, () => {
        assert.deepEqual(storageProblems(objects, expect), []);
      });
      test(`egress: ${expect.restrictedEgress ? 'restricted, and ' : 'where restricted, '}DNS, storage, the cluster port and OTLP reachable`, () => {
        assert.deepEqual(egressProblems(objects, expect), []);
      });
      test('metrics: a metrics listener on a named port, in no Service, reachable from the cluster only', () => {
        assert.deepEqual(metricsProblems(objects), []);
      });
      const extras = expect.redis
        ? `has ${expect.redis === 'sentinel' ? 'a replicated' : 'a'} Redis (append-only)${expect.jaeger ? ' and Jaeger' : ''}`
        : 'has no Redis and no Jaeger';
      test(extras, () => {
        assert.deepEqual(extrasProblems(objects, expect), []);
      });
      test('images are pinned; selectors select', () => {
        assert.deepEqual([...imageProblems(objects), ...selectorProblems(objects)], []);
      });
    });
  }
});

/** The monitoring component's PodMonitors, as committed (a Component does not render alone). */
function podMonitors(): K8sObject[] {
  const file = path.join(ROOT, 'k8s', 'components', 'monitoring', 'podmonitors.yaml');
  return parseDocuments(readFileSync(file, 'utf8'));
}

describe('the monitoring component', () => {
  test("the PodMonitors scrape each role's metrics port", () => {
    assert.deepEqual(podMonitorProblems(podMonitors()), []);
  });
  test('a PodMonitor scraping the API port is caught', () => {
    const objs = broken(podMonitors(), (o) => {
      const spec = o[0]?.spec as { podMetricsEndpoints: Array<{ port: string }> };
      (spec.podMetricsEndpoints[0] as { port: string }).port = 'api';
    });
    catches(podMonitorProblems(objs), /PodMonitor\/leaderway-node: scrapes port api/);
  });
});

function workload(objs: K8sObject[], labels: Record<string, string>): IDeployment | IStatefulSet {
  const owner = rolePod(objs, labels).owner;
  return objs.find((o) => `${o.kind}/${o.metadata.name}` === owner) as unknown as IDeployment;
}

function container(objs: K8sObject[], labels: Record<string, string>): IContainer {
  return workload(objs, labels).spec?.template.spec?.containers[0] as IContainer;
}

function configMap(objs: K8sObject[]): IConfigMap {
  return objs.find((o) => o.kind === 'ConfigMap') as unknown as IConfigMap;
}

describe('the invariants catch broken manifests', { skip }, () => {
  let dev: K8sObject[] = [];
  const expect = EXPECTATIONS.dev as OverlayExpectations;
  before(() => {
    dev = rendered('dev');
  });

  test('a schema violation', () => {
    const objs = broken(dev, (o) => {
      (workload(o, NODE_LABELS).spec as { replicas: unknown }).replicas = 'three';
    });
    catches(schemaProblems(objs), /StatefulSet\/leaderway-node: .*replicas must be integer/);
  });
  test('missing limits, a missing probe, privilege escalation, a writable root filesystem', () => {
    const objs = broken(dev, (o) => {
      const c = container(o, GATEWAY_LABELS);
      delete c.resources?.limits;
      delete c.livenessProbe;
      if (c.securityContext) {
        c.securityContext.allowPrivilegeEscalation = true;
        c.securityContext.readOnlyRootFilesystem = false;
      }
    });
    const problems = containerProblems(objs);
    catches(problems, /gateway: no resources\.limits\.cpu/);
    catches(problems, /gateway: no livenessProbe/);
    catches(problems, /gateway: allowPrivilegeEscalation is not false/);
    catches(problems, /gateway: readOnlyRootFilesystem is not true/);
  });
  test('running as root', () => {
    const objs = broken(dev, (o) => {
      const spec = workload(o, NODE_LABELS).spec?.template.spec;
      if (spec?.securityContext) spec.securityContext.runAsUser = 0;
    });
    catches(containerProblems(objs), /leaderway-node container node: no non-zero runAsUser/);
  });
  test('an inline Secret, an inline key, a password in a ConfigMap', () => {
    const key = Buffer.alloc(32, 9).toString('base64');
    const objs = broken(dev, (o) => {
      o.push({
        apiVersion: 'v1',
        kind: 'Secret',
        metadata: { name: 'leaderway-seal' },
        stringData: { 'seal-key': key },
      });
      const env = container(o, NODE_LABELS).env ?? [];
      const seal = env.find((v) => v.name === 'LEADERWAY_SEAL_KEY');
      if (seal) {
        delete seal.valueFrom;
        seal.value = key;
      }
      const data = configMap(o).data;
      if (data) data.REDIS = 'redis://:hunter2@redis:6379';
      const identity = workload(o, GATEWAY_LABELS).spec?.template.spec?.volumes?.find((v) => v.secret);
      if (identity?.secret) identity.secret.secretName = 'leaderway-gateway-identityy';
    });
    const problems = secretProblems(objs);
    catches(problems, /mounts Secret leaderway-gateway-identityy, which nothing creates/);
    catches(problems, /Secret\/leaderway-seal is rendered/);
    catches(problems, /LEADERWAY_SEAL_KEY must come from a secretKeyRef/);
    catches(problems, /looks like an inline key/);
    catches(problems, /a URL with a password/);
  });
  test('the seal key or the signing key on a gateway, node Redis credentials, a mistyped variable', async () => {
    const objs = broken(dev, (o) => {
      const c = container(o, GATEWAY_LABELS);
      c.env?.push({
        name: 'LEADERWAY_SEAL_KEY',
        valueFrom: { secretKeyRef: { name: 'leaderway-seal', key: 'seal-key' } },
      });
      c.env?.push({
        name: 'LEADERWAY_ADVERTISEMENT_SIGNING_KEY',
        valueFrom: { secretKeyRef: { name: 'leaderway-signing', key: 'signing-key' } },
      });
      const redis = c.env?.find((v) => v.name === 'LEADERWAY_REDIS_URL');
      if (redis?.valueFrom?.secretKeyRef) redis.valueFrom.secretKeyRef.name = 'leaderway-redis-node';
      c.env?.push({ name: 'LEADERWAY_DRAIN_DELAYS', value: '5s' });
    });
    const problems = await leaderwayEnvProblems(objs);
    catches(problems, /leaderway-gateway: references LEADERWAY_SEAL_KEY/);
    catches(problems, /leaderway-gateway: references LEADERWAY_ADVERTISEMENT_SIGNING_KEY/);
    catches(problems, /leaderway-gateway: references "leaderway-redis-node"/);
    catches(problems, /LEADERWAY_SEAL_KEY must not be set/);
    catches(problems, /unknown LEADERWAY_ variables: .*LEADERWAY_DRAIN_DELAYS/);
  });
  test('an invalid value', async () => {
    const objs = broken(dev, (o) => {
      const data = configMap(o).data;
      if (data) data.LEADERWAY_LOCK_TTL = 'five seconds';
    });
    catches(await leaderwayEnvProblems(objs), /lock_ttl \(LEADERWAY_LOCK_TTL\)/);
  });
  test("VAULT_API_ADDR that is not the gateway's URL", () => {
    for (const wrong of [
      'http://leaderway-node-0.leaderway-node:8200',
      'http://leaderway-gateway:9999',
      'https://leaderway-gateway:8300',
    ]) {
      const objs = broken(dev, (o) => {
        const data = configMap(o).data;
        if (data) data.VAULT_API_ADDR = wrong;
      });
      assert.notDeepEqual(apiAddrProblems(objs), [], wrong);
    }
  });
  test('a grace period too short for preStop + drain + shutdown', () => {
    const objs = broken(dev, (o) => {
      const spec = workload(o, GATEWAY_LABELS).spec?.template.spec;
      if (spec) spec.terminationGracePeriodSeconds = 15;
    });
    catches(
      gatewayProblems(objs),
      /terminationGracePeriodSeconds 15 < preStop 5s \+ drain 5000ms \+ shutdown 10000ms/,
    );
  });
  test('wrong node probes, ordered pod management, no PDB', () => {
    const objs = broken(dev, (o) => {
      const sts = workload(o, NODE_LABELS) as IStatefulSet;
      if (sts.spec) sts.spec.podManagementPolicy = 'OrderedReady';
      const c = container(o, NODE_LABELS);
      if (c.livenessProbe?.httpGet) c.livenessProbe.httpGet.path = '/v1/sys/health';
      const i = o.findIndex((x) => x.kind === 'PodDisruptionBudget' && x.metadata.name === 'leaderway-node');
      o.splice(i, 1);
    });
    const problems = nodeProblems(objs, expect);
    catches(problems, /podManagementPolicy must be Parallel/);
    catches(problems, /liveness must be/);
    catches(problems, /expected one PodDisruptionBudget, found 0/);
  });
  test('a NetworkPolicy opening the cluster port to everyone, or Redis to another pod', () => {
    const objs = broken(dev, (o) => {
      o.push({
        apiVersion: 'networking.k8s.io/v1',
        kind: 'NetworkPolicy',
        metadata: { name: 'too-open' },
        spec: { podSelector: { matchLabels: NODE_LABELS }, ingress: [{ ports: [{ port: 8201 }] }] },
      });
      o.push({
        apiVersion: 'networking.k8s.io/v1',
        kind: 'NetworkPolicy',
        metadata: { name: 'redis-too' },
        spec: {
          podSelector: { matchLabels: { 'app.kubernetes.io/name': 'redis' } },
          ingress: [{ from: [{ podSelector: { matchLabels: { app: 'debug' } } }] }],
        },
      });
    });
    const problems = networkPolicyProblems(objs, expect);
    catches(problems, /nodes: port 8201 is open to any source/);
    catches(problems, /redis: port 6379 allows pods \{"app":"debug"\}/);
  });
  test('metrics in a Service, open to any source, anonymous on the API port, or on an unnamed port', () => {
    const objs = broken(dev, (o) => {
      const svc = o.find(
        (x) => x.kind === 'Service' && x.metadata.name === 'leaderway-gateway',
      ) as unknown as IService;
      svc.spec?.ports?.push({ name: 'metrics', port: 8302, targetPort: 'metrics' });
      o.push({
        apiVersion: 'networking.k8s.io/v1',
        kind: 'NetworkPolicy',
        metadata: { name: 'scrape-from-anywhere' },
        spec: { podSelector: { matchLabels: NODE_LABELS }, ingress: [{ ports: [{ port: 8202 }] }] },
      });
      container(o, GATEWAY_LABELS).env?.push({
        name: 'LEADERWAY_UNAUTHENTICATED_METRICS_ACCESS',
        value: 'true',
      });
      const node = container(o, NODE_LABELS);
      node.ports = (node.ports ?? []).filter((p) => p.name !== 'metrics');
    });
    const problems = metricsProblems(objs);
    catches(problems, /Service\/leaderway-gateway: exposes the metrics port/);
    catches(problems, /leaderway-node: metrics port 8202 is open to any source/);
    catches(problems, /leaderway-gateway: LEADERWAY_UNAUTHENTICATED_METRICS_ACCESS/);
    catches(
      problems,
      /leaderway-node: LEADERWAY_METRICS_ADDR's port is not the container port named "metrics"/,
    );
  });
  test('Jaeger missing from dev, OTEL variables missing, a Service selecting nothing', () => {
    const objs = broken(dev, (o) => {
      const i = o.findIndex((x) => x.kind === 'Deployment' && x.metadata.name === 'leaderway-jaeger');
      o.splice(i, 1);
      const c = container(o, NODE_LABELS);
      c.env = (c.env ?? []).filter((v) => v.name !== 'OTEL_SERVICE_NAME');
      const svc = o.find(
        (x) => x.kind === 'Service' && x.metadata.name === 'leaderway-gateway',
      ) as unknown as IService;
      if (svc.spec?.selector) svc.spec.selector['app.kubernetes.io/component'] = 'gatewya';
    });
    catches(extrasProblems(objs, expect), /no Jaeger workload/);
    catches(otelProblems(objs, expect), /OTEL_SERVICE_NAME must be leaderway-node/);
    catches(selectorProblems(objs), /Service\/leaderway-gateway: selects no pod/);
  });
  test('an unpinned image', () => {
    const objs = broken(dev, (o) => {
      container(o, GATEWAY_LABELS).image = 'leaderway:latest';
    });
    catches(imageProblems(objs), /image "leaderway:latest" is not pinned/);
  });
  test('a Sentinel topology with two pods sharing a machine, no PDB, and writes without a replica', () => {
    const sentinelExpect = EXPECTATIONS['production-sentinel'] as OverlayExpectations;
    const redisLabels = { 'app.kubernetes.io/name': 'redis', 'app.kubernetes.io/component': 'redis' };
    const objs = broken(rendered('production-sentinel'), (o) => {
      const sts = workload(o, redisLabels);
      if (sts.spec) sts.spec.replicas = 2;
      const spec = sts.spec?.template.spec;
      if (spec) delete spec.affinity;
      const c = spec?.containers[0] as IContainer;
      c.args = (c.args ?? []).filter(
        (a, i, all) => a !== '--min-replicas-to-write' && all[i - 1] !== '--min-replicas-to-write',
      );
      o.splice(
        o.findIndex((x) => x.kind === 'PodDisruptionBudget' && x.metadata.name === 'leaderway-redis'),
        1,
      );
    });
    const problems = extrasProblems(objs, sentinelExpect);
    catches(problems, /fewer than 3 Redis pods/);
    catches(problems, /no required anti-affinity/);
    catches(problems, /min-replicas-to-write is not set/);
    catches(problems, /expected one PodDisruptionBudget, found 0/);
  });
});
