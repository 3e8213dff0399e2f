/**
 * Generates k8s/components/monitoring from its sources, so they cannot drift: the PrometheusRule
 * from config/prometheus/leaderway-alerts.yml, and the Grafana dashboard JSON from
 * scripts/dashboard.ts. `test/monitoring/monitoring.test.ts` fails when the committed files
 * differ from what this renders.
 *
 *   node --import tsx scripts/gen-monitoring.ts     (npm run docs:monitoring)
 */
import { readFileSync, writeFileSync } from 'node:fs';
import * as path from 'node:path';
import { parse, stringify } from 'yaml';
import { grafanaDashboard } from './dashboard';

const ROOT = path.join(__dirname, '..');
export const ALERTS_FILE = path.join(ROOT, 'config', 'prometheus', 'leaderway-alerts.yml');
export const COMPONENT_DIR = path.join(ROOT, 'k8s', 'components', 'monitoring');
export const RULE_FILE = path.join(COMPONENT_DIR, 'prometheusrule.yaml');
export const DASHBOARD_FILE = path.join(COMPONENT_DIR, 'leaderway-dashboard.json');

/** The alert groups of the rule file. */
export function alertGroups(): Array<{ name: string; rules: Array<Record<string, unknown>> }> {
  return (parse(readFileSync(ALERTS_FILE, 'utf8')) as { groups: [] }).groups;
}

export function renderPrometheusRule(): string {
  const rule = {
    apiVersion: 'monitoring.coreos.com/v1',
    kind: 'PrometheusRule',
    metadata: { name: 'leaderway', labels: { 'app.kubernetes.io/name': 'leaderway' } },
    spec: { groups: alertGroups() },
  };
  return `# Generated from config/prometheus/leaderway-alerts.yml by scripts/gen-monitoring.ts: edit that file.\n${stringify(rule, { lineWidth: 0 })}`;
}

export function renderDashboard(): string {
  return `${JSON.stringify(grafanaDashboard(), null, 2)}\n`;
}

if (require.main === module) {
  writeFileSync(RULE_FILE, renderPrometheusRule());
  writeFileSync(DASHBOARD_FILE, renderDashboard());
  process.stdout.write(
    `wrote ${path.relative(ROOT, RULE_FILE)} and ${path.relative(ROOT, DASHBOARD_FILE)}\n`,
  );
}
