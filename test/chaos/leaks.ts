/**
 * The leak scan after a chaos run: Redis (keys, values, append-only file; every data server under
 * Sentinel), every process's log,
 * exported traces and the gateways' /metrics, searched for tokens, secret values and keys.
 */
import { request } from 'undici';
import type { OtlpReceiver } from '../helpers/otlp-receiver';
import { type LeakReport, scanForLeaks } from '../security/leak-scan';
import { SECRET_MARKER } from './clients';
import type { ChaosCluster } from './cluster';

/** The scan's findings and a one-line account of what was scanned. */
export async function leakScan(
  c: ChaosCluster,
  traces: OtlpReceiver | undefined,
): Promise<{ findings: string[]; line: string; report: LeakReport }> {
  const texts: Array<{ name: string; text: string }> = [];
  for (const p of [...c.gateways, ...c.nodes]) {
    if (!p.metricsUrl) continue;
    try {
      const r = await request(`${p.metricsUrl}/metrics`, { signal: AbortSignal.timeout(5_000) });
      const text = await r.body.text();
      if (r.statusCode === 200) texts.push({ name: `/metrics of ${p.name}`, text });
    } catch {
      // No metrics endpoint on this process.
    }
  }
  const secrets = { token: c.token, keys: c.keys, valueMarker: SECRET_MARKER };
  const primary = await c.store.primary();
  const report = await scanForLeaks(
    { redisUrl: primary.url, procs: c.all, traces: traces?.raw ?? [], texts },
    secrets,
  );
  // Under Sentinel, every replica's keys and files too.
  for (const server of c.store.servers.filter((x) => x !== primary)) {
    const r = await scanForLeaks({ redisUrl: server.url, procs: [], traces: [] }, secrets);
    report.findings.push(...r.findings.map((f) => `redis :${server.port}: ${f}`));
    report.scanned.redisKeys += r.scanned.redisKeys;
    report.scanned.aofBytes += r.scanned.aofBytes;
  }
  const s = report.scanned;
  const spans = traces?.spans().length ?? 0;
  const traced = traces
    ? spans > 0
      ? `${s.traceBodies} trace exports (${spans} spans)`
      : 'no traces exported (this build exports none: skipped)'
    : 'traces not enabled';
  const line =
    `leak scan: ${report.needles.length} secrets searched in ${s.redisKeys} Redis keys, ${s.aofBytes} AOF bytes, ` +
    `${s.logLines} log lines, ${traced}, ${s.texts} /metrics pages: ` +
    (report.findings.length === 0 ? 'nothing found' : `${report.findings.length} FOUND`);
  return { findings: report.findings, line, report };
}
