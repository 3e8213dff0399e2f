/**
 * Views of the pods a rendered overlay would run: every workload's pod template, its containers,
 * and each container's environment resolved the way the kubelet resolves it (ConfigMap and
 * Secret references, the downward API, `$(VAR)` expansion).
 */
import type { IDeployment, IStatefulSet } from 'kubernetes-models/apps/v1';
import type { IConfigMap, IContainer, IEnvVar, IPodSpec } from 'kubernetes-models/v1';
import type { K8sObject } from './render';

/** A workload's pod template. */
export interface PodTemplate {
  /** `Kind/name` of the workload. */
  owner: string;
  kind: 'Deployment' | 'StatefulSet';
  name: string;
  namespace: string;
  labels: Record<string, string>;
  spec: IPodSpec;
  replicas: number;
}

/** Every Deployment's and StatefulSet's pod template. */
export function podTemplates(objects: K8sObject[]): PodTemplate[] {
  const out: PodTemplate[] = [];
  for (const o of objects) {
    if (o.kind !== 'Deployment' && o.kind !== 'StatefulSet') continue;
    const w = o as unknown as IDeployment | IStatefulSet;
    const spec = w.spec?.template.spec;
    if (!spec) throw new Error(`${o.kind}/${o.metadata.name} has no pod spec`);
    out.push({
      owner: `${o.kind}/${o.metadata.name}`,
      kind: o.kind,
      name: o.metadata.name,
      namespace: o.metadata.namespace ?? 'default',
      labels: (w.spec?.template.metadata?.labels ?? {}) as Record<string, string>,
      spec,
      replicas: w.spec?.replicas ?? 1,
    });
  }
  return out;
}

/** Every container of a pod, init containers included, with where it comes from. */
export function containersOf(pod: PodTemplate): Array<{ where: string; c: IContainer; init: boolean }> {
  return [
    ...(pod.spec.initContainers ?? []).map((c) => ({ where: `${pod.owner} init ${c.name}`, c, init: true })),
    ...pod.spec.containers.map((c) => ({ where: `${pod.owner} container ${c.name}`, c, init: false })),
  ];
}

/** Does `selector` (matchLabels only; we use no expressions) select `labels`? */
export function selects(
  selector: Record<string, string> | undefined,
  labels: Record<string, string>,
): boolean {
  if (!selector || Object.keys(selector).length === 0) return false;
  return Object.entries(selector).every(([k, v]) => labels[k] === v);
}

/** Stand-ins for what only a running cluster knows. */
export const FAKE_POD_IP = '10.244.1.7';

/** Values for the Secrets k8s/scripts/make-secrets.sh creates, keyed `name/key`. */
export type SecretValues = Record<string, string>;

/** A container's environment as the process would see it, or the problems resolving it. */
export function resolveEnv(
  pod: PodTemplate,
  c: IContainer,
  objects: K8sObject[],
  secrets: SecretValues,
): { env: Record<string, string>; problems: string[] } {
  const env: Record<string, string> = {};
  const problems: string[] = [];
  const where = `${pod.owner} container ${c.name}`;
  if (c.envFrom && c.envFrom.length > 0)
    problems.push(`${where}: envFrom is not used here; list variables in env`);
  const podName = pod.kind === 'StatefulSet' ? `${pod.name}-0` : `${pod.name}-5d9c8b7f6-x2x9q`;
  for (const v of (c.env ?? []) as IEnvVar[]) {
    const value = envValue(v, { podName, namespace: pod.namespace }, objects, secrets);
    if (typeof value !== 'string') {
      problems.push(`${where}: ${v.name}: ${value.problem}`);
      continue;
    }
    env[v.name] = expand(value, env);
  }
  return { env, problems };
}

function envValue(
  v: IEnvVar,
  pod: { podName: string; namespace: string },
  objects: K8sObject[],
  secrets: SecretValues,
): string | { problem: string } {
  if (v.valueFrom === undefined) return v.value ?? '';
  const from = v.valueFrom;
  if (from.fieldRef) {
    const field = from.fieldRef.fieldPath;
    if (field === 'metadata.name') return pod.podName;
    if (field === 'metadata.namespace') return pod.namespace;
    if (field === 'status.podIP') return FAKE_POD_IP;
    return { problem: `unsupported fieldRef ${field}` };
  }
  if (from.configMapKeyRef) {
    const { name, key } = from.configMapKeyRef;
    const cm = objects.find((o) => o.kind === 'ConfigMap' && o.metadata.name === name) as
      | IConfigMap
      | undefined;
    if (!cm) return { problem: `ConfigMap ${name} is not in the rendered output` };
    const value = cm.data?.[key];
    if (value === undefined) return { problem: `ConfigMap ${name} has no key ${key}` };
    return value;
  }
  if (from.secretKeyRef) {
    const ref = `${from.secretKeyRef.name}/${from.secretKeyRef.key}`;
    const value = secrets[ref];
    if (value === undefined)
      return { problem: `Secret ${ref} is not one that k8s/scripts/make-secrets.sh creates` };
    return value;
  }
  return { problem: 'unsupported valueFrom' };
}

/** Kubernetes' `$(VAR)` expansion: earlier variables only; `$$` escapes; unknown names stay. */
export function expand(value: string, env: Record<string, string>): string {
  return value.replace(/\$\$|\$\(([A-Za-z_][A-Za-z0-9_]*)\)/g, (m, name: string | undefined) => {
    if (m === '$$') return '$';
    return name !== undefined && name in env ? (env[name] as string) : m;
  });
}
