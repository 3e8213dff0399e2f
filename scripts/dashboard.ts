/**
 * The Grafana dashboard that ships with leaderway (k8s/components/monitoring), as data: each panel a title and its PromQL.
 * `scripts/gen-monitoring.ts` writes it out as Grafana JSON (k8s/components/monitoring); the
 * monitoring test checks every metric and label it queries against a real node's and gateway's
 * /metrics, so renaming a metric breaks the build, not the dashboard.
 */

export interface PanelSpec {
  title: string;
  /** One query per series group; `legend` is Grafana's legendFormat. */
  targets: Array<{ expr: string; legend: string }>;
  unit?: string;
  description?: string;
}

export const DASHBOARD_UID = 'leaderway-overview';
/** Grafana's reference to the dashboard's datasource variable (a literal `${datasource}`). */
const DATASOURCE = { type: 'prometheus', uid: `$${'{'}datasource}` };

export const PANELS: PanelSpec[] = [
  {
    title: 'Lock holder (1 = active)',
    description: 'Which node holds the HA lock over time: exactly one line at 1 is healthy.',
    targets: [{ expr: 'max by (instance) (leaderway_lock_held{job=~"$node_job"})', legend: '{{instance}}' }],
  },
  {
    title: 'Leader epoch seen by gateways',
    description: 'The fencing epoch of the leader each gateway routes to; a step is a leader change.',
    targets: [
      {
        expr: 'max by (instance) (leaderway_gateway_leader_epoch{job=~"$gateway_job"})',
        legend: '{{instance}}',
      },
    ],
  },
  {
    title: 'Leader changes (per 5 min)',
    targets: [
      {
        expr: 'max(increase(leaderway_gateway_leader_changes_total{job=~"$gateway_job"}[5m]))',
        legend: 'seen by gateways',
      },
      {
        expr: 'sum by (instance) (increase(leaderway_lock_acquisitions_total{job=~"$node_job"}[5m]))',
        legend: 'acquired by {{instance}}',
      },
      {
        expr: 'sum by (reason) (increase(leaderway_lock_losses_total{job=~"$node_job"}[5m]))',
        legend: 'lost: {{reason}}',
      },
    ],
  },
  {
    title: 'Gateway requests by status',
    unit: 'reqps',
    targets: [
      {
        expr: 'sum by (instance, status) (rate(leaderway_gateway_http_requests_total{job=~"$gateway_job"}[1m]))',
        legend: '{{instance}} {{status}}',
      },
    ],
  },
  {
    title: 'Gateway latency',
    unit: 's',
    targets: [
      {
        expr: 'histogram_quantile(0.99, sum by (le, instance) (rate(leaderway_gateway_http_request_duration_seconds_bucket{job=~"$gateway_job"}[5m])))',
        legend: 'p99 {{instance}}',
      },
      {
        expr: 'histogram_quantile(0.5, sum by (le, instance) (rate(leaderway_gateway_http_request_duration_seconds_bucket{job=~"$gateway_job"}[5m])))',
        legend: 'p50 {{instance}}',
      },
    ],
  },
  {
    title: 'Requests held through failovers',
    description: 'How long requests waited for a leader, and why the gateway retried them.',
    unit: 's',
    targets: [
      {
        expr: 'histogram_quantile(0.99, sum by (le) (rate(leaderway_gateway_leader_wait_seconds_bucket{job=~"$gateway_job"}[5m])))',
        legend: 'p99 wait for a leader',
      },
      {
        expr: 'sum by (reason) (rate(leaderway_gateway_retries_total{job=~"$gateway_job"}[1m]))',
        legend: 'retries/s: {{reason}}',
      },
    ],
  },
  {
    title: 'Gateway failures',
    unit: 'reqps',
    targets: [
      {
        expr: 'sum(rate(leaderway_gateway_no_leader_total{job=~"$gateway_job"}[1m]))',
        legend: 'no leader in time',
      },
      {
        expr: 'sum(rate(leaderway_gateway_unknown_outcome_total{job=~"$gateway_job"}[1m]))',
        legend: 'outcome unknown',
      },
      {
        expr: 'sum by (reason) (rate(leaderway_gateway_requests_shed_total{job=~"$gateway_job"}[1m]))',
        legend: 'shed: {{reason}}',
      },
    ],
  },
  {
    title: 'Node requests by status',
    unit: 'reqps',
    targets: [
      {
        expr: 'sum by (instance, status) (rate(leaderway_http_requests_total{job=~"$node_job"}[1m]))',
        legend: '{{instance}} {{status}}',
      },
    ],
  },
  {
    title: 'Node latency (p99)',
    unit: 's',
    targets: [
      {
        expr: 'histogram_quantile(0.99, sum by (le, instance) (rate(leaderway_http_request_duration_seconds_bucket{job=~"$node_job"}[5m])))',
        legend: '{{instance}}',
      },
    ],
  },
  {
    title: 'Standby forwarding',
    unit: 'reqps',
    targets: [
      {
        expr: 'sum by (instance, outcome) (rate(leaderway_forwarded_requests_total{job=~"$node_job"}[1m]))',
        legend: '{{instance}} forwarded: {{outcome}}',
      },
      {
        expr: 'sum by (instance, reason) (rate(leaderway_redirects_total{job=~"$node_job"}[1m]))',
        legend: '{{instance}} 307: {{reason}}',
      },
    ],
  },
  {
    title: 'Standby reads',
    description:
      'Reads standbys were asked for (standby reads on): served there from storage, or forwarded to the active (the route, the token or a header needs it).',
    unit: 'reqps',
    targets: [
      {
        expr: 'sum by (instance, outcome) (rate(leaderway_standby_reads_total{job=~"$node_job"}[1m]))',
        legend: '{{instance}} {{outcome}}',
      },
    ],
  },
  {
    title: 'Storage errors',
    description:
      'Requests failed by Redis (unreachable, or a write whose outcome is unknown), writes WAIT did not confirm, lock command errors.',
    unit: 'reqps',
    targets: [
      {
        expr: 'sum by (code) (rate(leaderway_request_errors_total{job=~"$node_job",code=~"LW_ERR_STORAGE_UNAVAILABLE|LW_ERR_OUTCOME_UNKNOWN"}[1m]))',
        legend: '{{code}}',
      },
      {
        expr: 'sum(rate(leaderway_storage_unreplicated_writes_total{job=~"$node_job"}[1m]))',
        legend: 'not confirmed by WAIT',
      },
      {
        expr: 'sum by (op) (rate(leaderway_lock_errors_total{job=~"$node_job"}[1m]))',
        legend: 'lock {{op}} errors',
      },
    ],
  },
  {
    title: 'Fenced writes and refused advertisements',
    targets: [
      {
        expr: 'sum(increase(leaderway_fenced_writes_total{job=~"$node_job"}[5m]))',
        legend: 'fenced writes',
      },
      {
        expr: 'sum by (reason) (increase(leaderway_gateway_advertisements_rejected_total{job=~"$gateway_job"}[5m]))',
        legend: 'gateway refused: {{reason}}',
      },
    ],
  },
  {
    title: 'Spread reads: served, and fallbacks to the active',
    description:
      'Gateways with LEADERWAY_GATEWAY_READ_ROUTING=spread: reads by the kind of node that served them, and reads a standby did not serve, sent on to the active, by outcome (alert LeaderwayGatewayReadFallbacks).',
    unit: 'reqps',
    targets: [
      {
        expr: 'sum by (target) (rate(leaderway_gateway_reads_served_total{job=~"$gateway_job"}[1m]))',
        legend: 'served by {{target}}',
      },
      {
        expr: 'sum by (outcome) (rate(leaderway_gateway_read_fallbacks_total{job=~"$gateway_job"}[1m]))',
        legend: 'fell back: {{outcome}}',
      },
    ],
  },
  {
    title: 'Standbys known and membership records refused',
    description:
      'Standbys each spread-routing gateway takes from the verified membership record, and records refused by reason (alerts LeaderwayGatewayNoStandbys, LeaderwayGatewayMembershipRejected; leader-mismatch is a read racing a leader change).',
    targets: [
      {
        expr: 'max by (instance) (leaderway_gateway_standby_members{job=~"$gateway_job"})',
        legend: '{{instance}} standbys',
      },
      {
        expr: 'sum by (reason) (increase(leaderway_gateway_membership_rejected_total{job=~"$gateway_job"}[5m]))',
        legend: 'refused: {{reason}}',
      },
    ],
  },
];

/** The dashboard as Grafana JSON (schema 39; a Prometheus datasource chosen by variable). */
export function grafanaDashboard(): Record<string, unknown> {
  const panels = PANELS.map((p, i) => ({
    id: i + 1,
    type: 'timeseries',
    title: p.title,
    description: p.description ?? '',
    datasource: DATASOURCE,
    gridPos: { h: 8, w: 12, x: (i % 2) * 12, y: Math.floor(i / 2) * 8 },
    fieldConfig: { defaults: { unit: p.unit ?? 'short' }, overrides: [] },
    options: { legend: { displayMode: 'list', placement: 'bottom' }, tooltip: { mode: 'multi' } },
    targets: p.targets.map((t, j) => ({
      refId: String.fromCharCode(65 + j),
      expr: t.expr,
      legendFormat: t.legend,
      datasource: DATASOURCE,
    })),
  }));
  const jobVar = (name: string, value: string) => ({
    name,
    type: 'custom',
    query: value,
    current: { text: value, value },
    options: [{ text: value, value, selected: true }],
  });
  return {
    uid: DASHBOARD_UID,
    title: 'leaderway',
    description: 'Leader, failovers, gateways, forwarding and storage of a leaderway cluster.',
    tags: ['leaderway'],
    schemaVersion: 39,
    version: 1,
    time: { from: 'now-1h', to: 'now' },
    refresh: '30s',
    templating: {
      list: [
        { name: 'datasource', type: 'datasource', query: 'prometheus' },
        jobVar('node_job', 'leaderway-node'),
        jobVar('gateway_job', 'leaderway-gateway'),
      ],
    },
    panels,
  };
}
