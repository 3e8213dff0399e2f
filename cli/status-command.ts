/**
 * `leaderway status` and `leaderway members`: who leads, and is every node heartbeating? Asks
 * `VAULT_ADDR` (a gateway, the load balancer or any node) with `VAULT_TOKEN` (sys/ha-status needs
 * `read` on it; sys/leader needs none), as the Vault CLI does; `VAULT_CACERT` names a CA bundle
 * for an https address. `--format json` prints the same facts for scripts.
 *
 * Exit codes, for health scripts: 0 healthy (an active node, and every node heard from within
 * STALE_AFTER_MS), 1 degraded (a node's heartbeat is late), 2 unavailable (no answer, no active
 * node, or the token was refused).
 */
import { readFileSync } from 'node:fs';
import { Agent, request } from 'undici';
import type { PeerInfo } from '../node/api/node-api';

/** A standby echoes every second; this many seconds without one is worth a look. */
const STALE_AFTER_MS = 5_000;
const TIMEOUT_MS = 10_000;

export const EXIT = { healthy: 0, degraded: 1, unavailable: 2 } as const;

/** A node as sys/ha-status lists it. */
type HaNode = Omit<PeerInfo, 'cluster_address_reachable' | 'cluster_address_error'>;

interface Leader {
  is_self: boolean;
  active_time: string;
  leader_address: string;
  leader_cluster_address: string;
  leader_epoch?: number;
}

export interface StatusReport {
  address: string;
  leader: {
    node: string | null;
    api_address: string;
    cluster_address: string;
    epoch: number | null;
    active_since: string | null;
  } | null;
  nodes: Array<HaNode & { role: 'active' | 'standby'; heartbeat_age_ms: number | null; stale: boolean }>;
  status: keyof typeof EXIT;
  problems: string[];
}

class StatusError extends Error {}

async function getJson(addr: string, path: string, token: string | undefined, dispatcher: Agent | undefined) {
  let res: Awaited<ReturnType<typeof request>>;
  try {
    res = await request(`${addr.replace(/\/+$/, '')}/v1/${path}`, {
      headers: token ? { 'x-vault-token': token } : {},
      dispatcher,
      signal: AbortSignal.timeout(TIMEOUT_MS),
    });
  } catch (err) {
    throw new StatusError(`${addr} did not answer: ${(err as Error).message}`);
  }
  const text = await res.body.text();
  let body: unknown;
  try {
    body = JSON.parse(text);
  } catch {
    body = undefined;
  }
  if (res.statusCode !== 200) {
    const why = (body as { errors?: string[] } | undefined)?.errors?.join('; ') ?? text.slice(0, 200);
    throw new StatusError(`GET ${path}: ${res.statusCode} ${why}`);
  }
  return body;
}

/** Reads sys/leader and sys/ha-status and judges them. */
export async function readStatus(
  addr: string,
  token: string | undefined,
  opts: { caFile?: string; now?: number } = {},
): Promise<StatusReport> {
  const dispatcher = opts.caFile ? new Agent({ connect: { ca: readFileSync(opts.caFile) } }) : undefined;
  try {
    const leader = (await getJson(addr, 'sys/leader', undefined, dispatcher)) as Leader;
    const ha = (await getJson(addr, 'sys/ha-status', token, dispatcher)) as { nodes?: HaNode[] };
    const now = opts.now ?? Date.now();
    const nodes = (ha.nodes ?? []).map((n) => {
      const age = n.last_echo ? Math.max(0, now - Date.parse(n.last_echo)) : null;
      return {
        ...n,
        role: n.active_node ? ('active' as const) : ('standby' as const),
        heartbeat_age_ms: age,
        stale: !n.active_node && (age === null || age > STALE_AFTER_MS),
      };
    });
    const active = nodes.find((n) => n.active_node);
    const problems: string[] = [];
    if (!leader.leader_address || !active) problems.push('no active node');
    for (const n of nodes.filter((x) => x.stale))
      problems.push(
        `${n.hostname}: no heartbeat for ${n.heartbeat_age_ms === null ? 'ever' : fmtAge(n.heartbeat_age_ms)}`,
      );
    return {
      address: addr,
      leader: leader.leader_address
        ? {
            node: active?.hostname ?? null,
            api_address: leader.leader_address,
            cluster_address: leader.leader_cluster_address,
            epoch: leader.leader_epoch ?? null,
            active_since: leader.active_time,
          }
        : null,
      nodes,
      status: !active ? 'unavailable' : problems.length > 0 ? 'degraded' : 'healthy',
      problems,
    };
  } finally {
    await dispatcher?.close();
  }
}

function fmtAge(ms: number): string {
  if (ms < 1_000) return `${Math.round(ms)} ms`;
  const s = Math.round(ms / 1_000);
  if (s < 120) return `${s} s`;
  const m = Math.floor(s / 60);
  return m < 120 ? `${m} min ${s % 60} s` : `${Math.floor(m / 60)} h ${m % 60} min`;
}

function table(rows: string[][]): string {
  const widths = rows[0]?.map((_, i) => Math.max(...rows.map((r) => (r[i] ?? '').length))) ?? [];
  return rows
    .map((r) =>
      r
        .map((c, i) => c.padEnd(widths[i] ?? 0))
        .join('  ')
        .trimEnd(),
    )
    .join('\n');
}

/** The human form: a leader line (status only) and the members table. */
export function renderStatus(r: StatusReport, members: boolean, now = Date.now()): string {
  const lines: string[] = [];
  if (!members) {
    const l = r.leader;
    const since = l?.active_since ? Date.parse(l.active_since) : Number.NaN;
    lines.push(
      l
        ? `Leader: ${l.node ?? '?'} (${l.api_address}), epoch ${l.epoch ?? '?'}, active since ${l.active_since}${Number.isFinite(since) ? ` (${fmtAge(now - since)})` : ''}`
        : 'Leader: none',
      `Status: ${r.status}${r.problems.length ? ` — ${r.problems.join('; ')}` : ''}`,
      '',
    );
  }
  const rows = [['Node', 'Role', 'API address', 'Cluster address', 'Version', 'Last heartbeat']];
  for (const n of r.nodes) {
    rows.push([
      n.hostname,
      n.role,
      n.api_address,
      n.cluster_address,
      n.version,
      n.active_node
        ? '-'
        : n.heartbeat_age_ms === null
          ? 'never'
          : `${fmtAge(n.heartbeat_age_ms)} ago${n.stale ? ' (late)' : ''}`,
    ]);
  }
  lines.push(table(rows));
  return `${lines.join('\n')}\n`;
}

const USAGE = `Usage: leaderway status|members [--format table|json]

Who leads, and is every node heartbeating? Reads VAULT_ADDR (a gateway or any node) with
VAULT_TOKEN (read on sys/ha-status); VAULT_CACERT names a CA bundle for https.
Exit codes: 0 healthy, 1 degraded (a node's heartbeat is late), 2 unavailable (no answer,
no active node, or the token was refused).
`;

export async function statusCommand(args: string[], members: boolean): Promise<number> {
  let format = 'table';
  for (let i = 0; i < args.length; i++) {
    const a = args[i] as string;
    if (a === '--format' && args[i + 1]) format = args[++i] as string;
    else if (a.startsWith('--format=')) format = a.slice('--format='.length);
    else if (a === '--help' || a === '-h') {
      process.stdout.write(USAGE);
      return 0;
    } else {
      process.stderr.write(`leaderway: unexpected argument ${a}\n\n${USAGE}`);
      return 2;
    }
  }
  if (format !== 'table' && format !== 'json') {
    process.stderr.write(`leaderway: --format must be table or json\n`);
    return 2;
  }
  const addr = process.env['VAULT_ADDR'] || 'http://127.0.0.1:8200';
  try {
    const r = await readStatus(addr, process.env['VAULT_TOKEN'], {
      caFile: process.env['VAULT_CACERT'] || undefined,
    });
    process.stdout.write(format === 'json' ? `${JSON.stringify(r, null, 2)}\n` : renderStatus(r, members));
    return EXIT[r.status];
  } catch (err) {
    if (!(err instanceof StatusError)) throw err;
    if (format === 'json')
      process.stdout.write(
        `${JSON.stringify({ address: addr, status: 'unavailable', problems: [err.message] })}\n`,
      );
    else process.stderr.write(`leaderway: ${err.message}\n`);
    return EXIT.unavailable;
  }
}
