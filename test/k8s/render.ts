/**
 * Renders the kustomize overlays offline with `kubectl kustomize` and validates every object
 * against the Kubernetes API schemas bundled in `kubernetes-models` (Kubernetes 1.27). Those
 * schemas check types, required fields and formats; they do not reject unknown fields, which is
 * why the invariants in `invariants.ts` check every field they rely on by name.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { readdirSync } from 'node:fs';
import * as path from 'node:path';
import { Deployment, StatefulSet } from 'kubernetes-models/apps/v1';
import { NetworkPolicy } from 'kubernetes-models/networking.k8s.io/v1';
import { PodDisruptionBudget } from 'kubernetes-models/policy/v1';
import { ConfigMap, Namespace, Service } from 'kubernetes-models/v1';
import YAML from 'yaml';

export const ROOT = path.resolve(__dirname, '..', '..');
export const OVERLAYS_DIR = path.join(ROOT, 'k8s', 'overlays');

/** A rendered object, as parsed; kind-specific views are taken with `as`. */
export interface K8sObject {
  apiVersion: string;
  kind: string;
  metadata: {
    name: string;
    namespace?: string;
    labels?: Record<string, string>;
    annotations?: Record<string, string>;
  };
  [field: string]: unknown;
}

/** Why the manifest tests cannot run here, or null when kubectl with kustomize is available. */
export function kubectlMissing(): string | null {
  const r = spawnSync('kubectl', ['version', '--client'], { encoding: 'utf8' });
  if (r.error || r.status !== 0) {
    return (
      'kubectl not found: the Kubernetes manifest tests are skipped. Install kubectl ' +
      '(https://kubernetes.io/docs/tasks/tools/) to run them; .ci/run installs it.'
    );
  }
  return null;
}

/** Every overlay directory under k8s/overlays. */
export function overlayNames(): string[] {
  return readdirSync(OVERLAYS_DIR, { withFileTypes: true })
    .filter((d) => d.isDirectory())
    .map((d) => d.name)
    .sort();
}

/** `kubectl kustomize <dir>` parsed into objects. Throws with kubectl's message on failure. */
export function render(dir: string): K8sObject[] {
  const out = execFileSync('kubectl', ['kustomize', dir], {
    encoding: 'utf8',
    maxBuffer: 16 * 1024 * 1024,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  return parseDocuments(out);
}

/** Parses multi-document YAML; a document that fails to parse, or is not an object, throws. */
export function parseDocuments(text: string): K8sObject[] {
  const objects: K8sObject[] = [];
  for (const doc of YAML.parseAllDocuments(text)) {
    if (doc.errors.length > 0) throw new Error(`YAML error: ${doc.errors[0]?.message}`);
    const value = doc.toJS() as unknown;
    if (value === null || value === undefined) continue;
    const o = value as Partial<K8sObject>;
    if (
      typeof o.apiVersion !== 'string' ||
      typeof o.kind !== 'string' ||
      typeof o.metadata?.name !== 'string'
    )
      throw new Error(`not a Kubernetes object: ${JSON.stringify(value).slice(0, 200)}`);
    objects.push(o as K8sObject);
  }
  return objects;
}

type Validating = new (data: never) => { validate(): void };

/** The schema of every kind we render. A new kind must be added here to be validated. */
const MODELS: Record<string, Validating> = {
  'v1/ConfigMap': ConfigMap,
  'v1/Namespace': Namespace,
  'v1/Service': Service,
  'apps/v1/Deployment': Deployment,
  'apps/v1/StatefulSet': StatefulSet,
  'policy/v1/PodDisruptionBudget': PodDisruptionBudget,
  'networking.k8s.io/v1/NetworkPolicy': NetworkPolicy,
};

/** Schema problems of every object, one string per object (empty when all validate). */
export function schemaProblems(objects: K8sObject[]): string[] {
  const problems: string[] = [];
  for (const o of objects) {
    const where = `${o.kind}/${o.metadata.name}`;
    const Model = MODELS[`${o.apiVersion}/${o.kind}`];
    if (!Model) {
      problems.push(`${where}: no schema registered for ${o.apiVersion} ${o.kind} (add it to MODELS)`);
      continue;
    }
    try {
      new Model(structuredClone(o) as never).validate();
    } catch (err) {
      problems.push(`${where}: ${(err as Error).message}`);
    }
  }
  return problems;
}
