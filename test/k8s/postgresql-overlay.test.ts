/**
 * The production-postgresql overlay (components/external-postgresql): manifests.test.ts runs every
 * rule on it; here each PostgreSQL rule is shown to catch a broken copy of it.
 */
import assert from 'node:assert/strict';
import * as path from 'node:path';
import { before, describe, test } from 'node:test';
import type { INetworkPolicy } from 'kubernetes-models/networking.k8s.io/v1';
import type { IConfigMap, IContainer, IPodSpec } from 'kubernetes-models/v1';
import {
  GATEWAY_LABELS,
  leaderwayEnvProblems,
  NODE_LABELS,
  type OverlayExpectations,
  rolePod,
  secretProblems,
} from './invariants';
import { broken, catches } from './mutations';
import { type K8sObject, kubectlMissing, OVERLAYS_DIR, render } from './render';
import { egressProblems, POSTGRESQL_CA_PATH, storageProblems } from './storage-invariants';

const OVERLAY = 'production-postgresql';
const EXPECT: OverlayExpectations = {
  redis: false,
  jaeger: false,
  requiredNodeAntiAffinity: true,
  storage: 'postgresql',
  restrictedEgress: true,
};

const skip = kubectlMissing() ?? false;

function podSpec(objs: K8sObject[], labels: Record<string, string>): IPodSpec {
  return rolePod(objs, labels).spec;
}

function container(objs: K8sObject[], labels: Record<string, string>): IContainer {
  return podSpec(objs, labels).containers[0] as IContainer;
}

function egressPolicy(objs: K8sObject[]): INetworkPolicy {
  const p = objs.find((o) => o.kind === 'NetworkPolicy' && o.metadata.name === 'leaderway-egress');
  if (!p) throw new Error('no NetworkPolicy leaderway-egress');
  return p as unknown as INetworkPolicy;
}

describe('the PostgreSQL rules catch a broken production-postgresql', { skip }, () => {
  let pg: K8sObject[] = [];
  before(() => {
    pg = render(path.join(OVERLAYS_DIR, OVERLAY));
  });

  test('the overlay as committed keeps them', () => {
    assert.deepEqual([...storageProblems(pg, EXPECT), ...egressProblems(pg, EXPECT)], []);
  });
  test('a Redis variable or setting left from the base, a gateway still on Redis', () => {
    const objs = broken(pg, (o) => {
      container(o, NODE_LABELS).env?.push({
        name: 'LEADERWAY_REDIS_URL',
        valueFrom: { secretKeyRef: { name: 'leaderway-redis-node', key: 'url' } },
      });
      const gw = container(o, GATEWAY_LABELS);
      gw.env = (gw.env ?? []).filter((v) => v.name !== 'LEADERWAY_STORAGE');
      const cm = o.find((x) => x.kind === 'ConfigMap') as unknown as IConfigMap;
      if (cm.data) cm.data.LEADERWAY_REDIS_PREFIX = 'leaderway';
    });
    const problems = storageProblems(objs, EXPECT);
    catches(problems, /leaderway-node: Redis variables on PostgreSQL: LEADERWAY_REDIS_URL/);
    catches(problems, /leaderway-gateway: LEADERWAY_STORAGE is redis, expected postgresql/);
    catches(
      problems,
      /ConfigMap\/leaderway-config-\w+: Redis settings on PostgreSQL: LEADERWAY_REDIS_PREFIX/,
    );
  });
  test("the URL inline, or the gateway holding the nodes' credential", async () => {
    const objs = broken(pg, (o) => {
      const url = container(o, NODE_LABELS).env?.find((v) => v.name === 'LEADERWAY_POSTGRESQL_URL');
      if (url) {
        delete url.valueFrom;
        url.value = 'postgresql://leaderway:hunter2@db.example.com:5432/leaderway?sslmode=verify-full';
      }
      const gw = container(o, GATEWAY_LABELS).env?.find((v) => v.name === 'LEADERWAY_POSTGRESQL_URL');
      if (gw?.valueFrom?.secretKeyRef) gw.valueFrom.secretKeyRef.name = 'leaderway-postgresql-node';
    });
    const secrets = secretProblems(objs);
    catches(secrets, /LEADERWAY_POSTGRESQL_URL must come from a secretKeyRef/);
    catches(secrets, /a URL with a password/);
    const storage = storageProblems(objs, EXPECT);
    catches(
      storage,
      /leaderway-node: LEADERWAY_POSTGRESQL_URL must come from Secret leaderway-postgresql-node/,
    );
    catches(
      storage,
      /leaderway-gateway: LEADERWAY_POSTGRESQL_URL must come from Secret leaderway-postgresql-gateway/,
    );
    catches(
      await leaderwayEnvProblems(objs, ['server']),
      /leaderway-gateway: references "leaderway-postgresql-node"/,
    );
  });
  test('the server CA not where sslrootcert points, writable, or mounted with every key of its Secret', () => {
    const objs = broken(pg, (o) => {
      const node = container(o, NODE_LABELS);
      const m = node.volumeMounts?.find((v) => v.name === 'postgresql-ca');
      if (m) m.mountPath = '/etc/leaderway/pg-ca';
      const gw = container(o, GATEWAY_LABELS);
      const gm = gw.volumeMounts?.find((v) => v.name === 'postgresql-ca');
      if (gm) gm.readOnly = false;
      const vol = podSpec(o, GATEWAY_LABELS).volumes?.find((v) => v.name === 'postgresql-ca');
      if (vol?.secret) delete vol.secret.items;
    });
    const problems = storageProblems(objs, EXPECT);
    catches(
      problems,
      new RegExp(
        `leaderway-node: nothing mounted at /etc/leaderway/postgresql-ca \\(sslrootcert=${POSTGRESQL_CA_PATH}\\)`,
      ),
    );
    catches(problems, /leaderway-gateway: \/etc\/leaderway\/postgresql-ca is not mounted read-only/);
    catches(problems, /leaderway-gateway: Secret leaderway-postgresql-ca must project only ca.crt/);
  });
  test('egress without PostgreSQL, DNS over UDP, the cluster port or the collector; Redis reachable', () => {
    const objs = broken(pg, (o) => {
      const spec = egressPolicy(o).spec;
      if (!spec?.egress) throw new Error('no egress rules');
      spec.egress = spec.egress
        .map((rule) => ({
          ...rule,
          ports: (rule.ports ?? []).filter(
            (p) => p.port !== 5432 && p.port !== 4318 && !(p.port === 53 && p.protocol === 'UDP'),
          ),
        }))
        .filter((rule) => rule.ports.length > 0);
      for (const rule of spec.egress) {
        if (rule.ports?.some((p) => p.port === 8201))
          rule.to = [{ podSelector: { matchLabels: GATEWAY_LABELS } }];
      }
      spec.egress.push({ ports: [{ port: 6379, protocol: 'TCP' }] });
    });
    const problems = egressProblems(objs, EXPECT);
    for (const owner of ['StatefulSet/leaderway-node', 'Deployment/leaderway-gateway']) {
      catches(problems, new RegExp(`${owner}: egress to PostgreSQL \\(TCP 5432\\) is blocked`));
      catches(problems, new RegExp(`${owner}: egress to DNS \\(UDP 53\\) is blocked`));
      catches(problems, new RegExp(`${owner}: egress to the nodes' cluster port 8201 is blocked`));
      catches(problems, new RegExp(`${owner}: egress to the OTLP collector \\(TCP 4318\\) is blocked`));
      catches(problems, new RegExp(`${owner}: egress to Redis' port 6379 is open on PostgreSQL`));
    }
    assert.ok(!problems.some((p) => /DNS \(TCP 53\)/.test(p)), 'DNS over TCP was left open');
  });
  test('no egress policy at all', () => {
    const objs = broken(pg, (o) => {
      o.splice(o.indexOf(egressPolicy(o) as unknown as K8sObject), 1);
    });
    catches(egressProblems(objs, EXPECT), /leaderway-node: no NetworkPolicy restricts its egress/);
  });
});
