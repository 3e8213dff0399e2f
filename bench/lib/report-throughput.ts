/** Markdown for the throughput sections: steady state and cost growth. */
import { PATHS } from '../sections/steady';
import { metaLine, table } from './markdown';
import type { Measured, Results } from './results';
import { fmt, median, ratio, sizeLabel } from './stats';
import { cell } from './targets';

/** The steady-state block. */
export function steady(s: Measured<NonNullable<Results['steady']>['data']>): string {
  const d = s.data;
  const out: string[] = [metaLine(s.meta, median(d.rows.map((r) => r.result.foreignCpuPct ?? Number.NaN)))];
  out.push(
    `Active ${d.active}, standby ${d.standby}; each cell ${d.warmupS} s warm-up + ${d.durationS} s measured, paths in rotating order; reads of 1 KB at 50 and 100 connections are the median of ${d.headlineRounds} alternating rounds. "undici" is the bare undici proxy (bench/engines/undici-proxy.ts: the gateway's engine and its mutual TLS to the leader, nothing else). CPU columns are ms of CPU per 1,000 requests: the proxy's own (gateway, bare undici, HAProxy, or the forwarding standby) and the active node's. "Other work" is CPU used by processes outside the bench during the cell, in % of both cores: the machine is shared.`,
  );
  const conds = [...new Set(d.rows.map((r) => `${r.op}|${r.size}|${r.connections}`))];
  const headline: string[][] = [];
  for (const k of conds) {
    const [op, size, conns] = k.split('|') as ['read' | 'write', string, string];
    const at = (p: (typeof PATHS)[number]) => cell(d.rows, p, op, Number(size), Number(conns));
    const gw = at('gateway');
    const un = at('undici');
    const hp = at('haproxy');
    const di = at('direct');
    const sb = at('standby');
    headline.push([
      `${op} ${sizeLabel(Number(size))}`,
      conns,
      fmt(ratio(gw?.rps, hp?.rps)),
      fmt(ratio(gw?.p99, hp?.p99)),
      fmt(ratio(gw?.cpuPer1k.gateway, un?.cpuPer1k.undici)),
      fmt(ratio(gw?.rps, di?.rps)),
      fmt(ratio(sb?.rps, di?.rps)),
      `${fmt(gw?.cpuPer1k.gateway)} / ${fmt(un?.cpuPer1k.undici)} / ${fmt(hp?.cpuPer1k.haproxy)}`,
    ]);
  }
  out.push(
    '',
    '**Headline ratios**',
    '',
    table(
      [
        'Load',
        'Conns',
        'gateway/HAProxy req/s',
        'gateway/HAProxy p99',
        'gateway/bare undici CPU',
        'gateway/direct req/s',
        'standby/direct req/s',
        'CPU ms/1k gateway / bare undici / HAProxy',
      ],
      headline,
    ),
  );
  out.push('', '**All cells**', '');
  out.push(
    table(
      [
        'Load',
        'Conns',
        'Path',
        'req/s',
        'p50 ms',
        'p99 ms',
        'errors',
        'proxy CPU ms/1k',
        'active CPU ms/1k',
        'gateway RSS MB',
        'other work % CPU',
      ],
      conds.flatMap((k) => {
        const [op, size, conns] = k.split('|') as ['read' | 'write', string, string];
        return PATHS.flatMap((p) => {
          const r = cell(d.rows, p, op, Number(size), Number(conns));
          if (!r) return [];
          const proxyCpu = p === 'direct' ? undefined : r.cpuPer1k[p];
          return [
            [
              `${op} ${sizeLabel(Number(size))}`,
              conns,
              p,
              fmt(r.rps),
              fmt(r.p50),
              fmt(r.p99),
              String(r.errors),
              p === 'direct' ? '—' : fmt(proxyCpu),
              fmt(r.cpuPer1k.active),
              p === 'gateway' ? fmt(r.rssMb) : '—',
              fmt(r.foreignCpuPct),
            ],
          ];
        });
      }),
    ),
  );
  return out.join('\n');
}

/** The cost-growth block. */
export function growth(g: Measured<NonNullable<Results['growth']>['data']>): string {
  const d = g.data;
  const out = [metaLine(g.meta), ''];
  out.push(
    `The section starts a fresh gateway (RSS ${fmt(d.rssFreshMb)} MB before any request${d.idleCpuMsPerS !== undefined ? `; ${fmt(d.idleCpuMsPerS)} ms of CPU per second while idle, following the leader` : ''}) and primes it. Up to 100 connections are busy (autocannon, KV reads 1 KB); the others each send a read every 4 s to stay inside the gateway's 5 s keep-alive. "Idle dropped": idle connections closed before the end.`,
    '',
  );
  out.push(
    table(
      [
        'Open connections',
        'busy',
        'idle open',
        'idle dropped',
        'gateway RSS before MB',
        'gateway RSS peak MB',
        'req/s',
        'p50 ms',
        'p99 ms',
      ],
      d.levels.map((l) => [
        String(l.total),
        String(l.active),
        String(l.idleOpen),
        String(l.idleDropped),
        fmt(l.rssBeforeMb),
        fmt(l.result.rssMb),
        fmt(l.result.rps),
        String(l.result.p50),
        String(l.result.p99),
      ]),
    ),
    '',
    ...(d.afterDisconnect
      ? [
          `After a mass disconnect (1,000 clients gone at once with requests in flight and queued), 100 connections measured at once: ` +
            `${fmt(d.afterDisconnect.after.rps)} req/s, p99 ${d.afterDisconnect.after.p99} ms, ≈ ${d.afterDisconnect.afterReconnects} upstream reconnects in 3 s ` +
            `— against ${fmt(d.afterDisconnect.baseline.rps)} req/s, p99 ${d.afterDisconnect.baseline.p99} ms, ≈ ${d.afterDisconnect.baselineReconnects} reconnects on a quiet gateway.`,
          '',
        ]
      : []),
    `Value size (${d.sizeConnections} connections, ${d.durationS} s each, sizes in ascending order):`,
    '',
  );
  const keys = [...new Set(d.sizes.map((s) => `${s.size}|${s.op}`))];
  out.push(
    table(
      [
        'Value',
        'Op',
        'gateway p50 / p99 ms',
        'direct p50 / p99 ms',
        'gateway req/s',
        'direct req/s',
        'gateway RSS peak MB',
        'errors gw / direct',
      ],
      keys.map((k) => {
        const [size, op] = k.split('|') as [string, string];
        const gw = d.sizes.find(
          (s) => String(s.size) === size && s.op === op && s.path === 'gateway',
        )?.result;
        const di = d.sizes.find((s) => String(s.size) === size && s.op === op && s.path === 'direct')?.result;
        return [
          sizeLabel(Number(size)),
          op,
          `${gw?.p50} / ${gw?.p99}`,
          `${di?.p50} / ${di?.p99}`,
          fmt(gw?.rps),
          fmt(di?.rps),
          fmt(gw?.rssMb),
          `${gw?.errors} / ${di?.errors}`,
        ];
      }),
    ),
  );
  return out.join('\n');
}
