/**
 * What ships for monitoring works: the alert rules pass `promtool check rules` and their unit tests
 * (`promtool test rules`, leaderway-alerts.test.yml), every alert links to a runbook section that
 * exists, the Kubernetes component is generated from the sources, and every metric and label the
 * rules and the dashboard query exists in the /metrics of a real node and gateway.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import * as path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { request } from 'undici';
import { PANELS } from '../../scripts/dashboard';
import {
  ALERTS_FILE,
  alertGroups,
  DASHBOARD_FILE,
  RULE_FILE,
  renderDashboard,
  renderPrometheusRule,
} from '../../scripts/gen-monitoring';
import { ADVERTISEMENT_REJECTIONS } from '../../shared/leader/leader-watcher';
import { MEMBERSHIP_REJECTIONS } from '../../shared/leader/membership-watcher';
import { createGatewayMetrics, createNodeMetrics } from '../../shared/telemetry/metrics';
import { waitActive } from '../helpers/cluster';
import { call, initCluster } from '../helpers/http';
import { type Proc, spawnGateway, spawnNode, testKeys, waitFor } from '../helpers/procs';
import { type RedisServer, startRedis } from '../helpers/redis';

const ROOT = path.join(__dirname, '..', '..');
const RULE_TESTS = path.join(__dirname, 'leaderway-alerts.test.yml');
/** Target labels Prometheus adds (not in /metrics), and the histogram bucket label. */
const SCRAPE_LABELS = new Set(['job', 'instance', 'le']);

function promtool(args: string[]): { status: number | null; out: string } {
  const r = spawnSync('promtool', args, { cwd: ROOT, encoding: 'utf8' });
  if (r.error) throw new Error('promtool not found: install it (apt-get install -y prometheus)');
  return { status: r.status, out: `${r.stdout}${r.stderr}` };
}

/** Every PromQL expression shipped: the alert rules and the dashboard's queries. */
function expressions(): Array<{ where: string; expr: string }> {
  const out: Array<{ where: string; expr: string }> = [];
  for (const g of alertGroups())
    for (const r of g.rules) out.push({ where: `alert ${r['alert']}`, expr: String(r['expr']) });
  for (const p of PANELS) for (const t of p.targets) out.push({ where: `panel "${p.title}"`, expr: t.expr });
  return out;
}

describe('alert rules', () => {
  it('pass promtool check rules and promtool test rules', () => {
    const check = promtool(['check', 'rules', ALERTS_FILE]);
    assert.equal(check.status, 0, check.out);
    const unit = promtool(['test', 'rules', RULE_TESTS]);
    assert.equal(unit.status, 0, unit.out);
  });

  it('each has a unit test, a severity and a runbook section that exists', () => {
    const runbook = readFileSync(path.join(ROOT, 'docs', 'runbook.md'), 'utf8');
    const anchors = new Set(
      [...runbook.matchAll(/^#+ (.+)$/gm)].map((m) =>
        (m[1] as string)
          .toLowerCase()
          .replace(/[^a-z0-9 -]/g, '')
          .replace(/ /g, '-'),
      ),
    );
    const tests = readFileSync(RULE_TESTS, 'utf8');
    for (const g of alertGroups()) {
      for (const r of g.rules) {
        const name = String(r['alert']);
        const ann = r['annotations'] as Record<string, string>;
        const url = ann['runbook_url'] ?? '';
        assert.match(url, /^docs\/runbook\.md#/, `${name}: runbook_url`);
        assert.ok(
          anchors.has(url.split('#')[1] as string),
          `${name}: no heading for ${url} in docs/runbook.md`,
        );
        assert.ok(
          ['critical', 'warning'].includes((r['labels'] as Record<string, string>)['severity'] ?? ''),
        );
        assert.ok(tests.includes(`alertname: ${name}\n`), `${name} has no promtool unit test`);
      }
    }
  });

  it('the Kubernetes component is generated from them (npm run docs:monitoring)', () => {
    assert.ok(readFileSync(RULE_FILE, 'utf8') === renderPrometheusRule(), `${RULE_FILE} is stale`);
    assert.ok(readFileSync(DASHBOARD_FILE, 'utf8') === renderDashboard(), `${DASHBOARD_FILE} is stale`);
  });
});

/** Metric names (by `# TYPE`) and the label names seen on their series, from /metrics text. */
function parseExposition(text: string): Map<string, { type: string; labels: Set<string> }> {
  const out = new Map<string, { type: string; labels: Set<string> }>();
  for (const m of text.matchAll(/^# TYPE (\S+) (\S+)$/gm))
    out.set(m[1] as string, { type: m[2] as string, labels: new Set() });
  for (const m of text.matchAll(/^([a-zA-Z_:][a-zA-Z0-9_:]*)\{([^}]*)\}/gm)) {
    const series = m[1] as string;
    const base = out.has(series) ? series : series.replace(/_(bucket|sum|count)$/, '');
    for (const l of (m[2] as string).matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)="/g))
      out.get(base)?.labels.add(l[1] as string);
  }
  return out;
}

/** Label names each metric is defined with (prom-client), so labels not yet observed count too. */
function definedLabels(): Map<string, Set<string>> {
  const out = new Map<string, Set<string>>();
  for (const m of [createNodeMetrics(), createGatewayMetrics()]) {
    for (const metric of m.registry.getMetricsAsArray()) {
      const names = (metric as unknown as { labelNames?: string[] }).labelNames ?? [];
      out.set((metric as unknown as { name: string }).name, new Set(names));
    }
  }
  return out;
}

describe('the rules and the dashboard query metrics that exist', () => {
  let redis: RedisServer;
  let node: Proc;
  let gw: Proc;
  const exposed = new Map<string, { type: string; labels: Set<string> }>();
  let gatewayText = '';
  let nodeText = '';

  before(async () => {
    redis = await startRedis();
    const keys = testKeys();
    node = await spawnNode('n1', { redisUrl: redis.url, keys });
    const token = await initCluster(node.url);
    await waitActive([node]);
    // Spread routing, so its metrics are exported as a spread gateway exports them.
    gw = await spawnGateway('gw', {
      redisUrl: redis.url,
      keys,
      env: { LEADERWAY_GATEWAY_READ_ROUTING: 'spread' },
    });
    await waitFor(async () => (await call(gw.url, '/-/ready')).status === 200, 20_000, 'gateway ready');
    // Some traffic, so labelled series exist: a read, a refused token.
    await call(gw.url, '/v1/secret/data/m', { token });
    await call(gw.url, '/v1/secret/data/m', { token: 'nope' });
    for (const p of [node, gw]) {
      const r = await request(`${p.metricsUrl}/metrics`);
      const text = await r.body.text();
      if (p === gw) gatewayText = text;
      else nodeText = text;
      for (const [k, v] of parseExposition(text)) exposed.set(k, v);
    }
  });

  after(async () => {
    await Promise.all([gw?.stop('SIGKILL'), node?.stop('SIGKILL')]);
    await redis?.stop();
  });

  it('every leaderway metric name is in a real /metrics', () => {
    const missing: string[] = [];
    for (const { where, expr } of expressions()) {
      for (const m of expr.matchAll(/\b(leaderway_[a-z0-9_]+)\b/g)) {
        const name = m[1] as string;
        const base = exposed.has(name) ? name : name.replace(/_(bucket|sum|count)$/, '');
        const found = exposed.get(base);
        if (!found || (base !== name && found.type !== 'histogram')) missing.push(`${where}: ${name}`);
      }
    }
    assert.deepEqual(missing, []);
  });

  it('every label matched or grouped by is a label of the metrics it queries', () => {
    const defined = definedLabels();
    const labelsOf = (name: string) => {
      const base = exposed.has(name) ? name : name.replace(/_(bucket|sum|count)$/, '');
      return new Set([...(exposed.get(base)?.labels ?? []), ...(defined.get(base) ?? [])]);
    };
    const wrong: string[] = [];
    for (const { where, expr } of expressions()) {
      const metrics = [...expr.matchAll(/\b(leaderway_[a-z0-9_]+)\b/g)].map((m) => m[1] as string);
      for (const sel of expr.matchAll(/\b(leaderway_[a-z0-9_]+)\{([^}]*)\}/g)) {
        const have = labelsOf(sel[1] as string);
        for (const l of (sel[2] as string).matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)\s*(=~|!~|!=|=)/g)) {
          const label = l[1] as string;
          if (!SCRAPE_LABELS.has(label) && !have.has(label))
            wrong.push(`${where}: ${sel[1]} has no label ${label}`);
        }
      }
      for (const by of expr.matchAll(/\bby \(([^)]*)\)/g)) {
        for (const label of (by[1] as string).split(',').map((x) => x.trim())) {
          if (SCRAPE_LABELS.has(label)) continue;
          if (!metrics.some((m) => labelsOf(m).has(label)))
            wrong.push(`${where}: nothing it queries has label ${label}`);
        }
      }
    }
    assert.deepEqual(wrong, []);
  });

  it('a spread gateway exports every membership rejection reason at 0 (the alert sees the first refusal)', () => {
    for (const reason of MEMBERSHIP_REJECTIONS)
      assert.match(
        gatewayText,
        new RegExp(`^leaderway_gateway_membership_rejected_total\\{reason="${reason}"\\} 0$`, 'm'),
        reason,
      );
  });

  it('nodes and gateways export every advertisement rejection reason at 0 (the alert sees the first refusal)', () => {
    for (const reason of ADVERTISEMENT_REJECTIONS) {
      assert.match(
        gatewayText,
        new RegExp(`^leaderway_gateway_advertisements_rejected_total\\{reason="${reason}"\\} 0$`, 'm'),
        `gateway: ${reason}`,
      );
      assert.match(
        nodeText,
        new RegExp(`^leaderway_advertisements_rejected_total\\{reason="${reason}"\\} 0$`, 'm'),
        `node: ${reason}`,
      );
    }
  });

  it('a renamed metric would be caught (the check sees what is missing)', () => {
    assert.equal(exposed.has('leaderway_lock_held'), true);
    assert.equal(exposed.has('leaderway_lock_heldd'), false);
    assert.equal(exposed.get('leaderway_gateway_http_request_duration_seconds')?.type, 'histogram');
  });
});
