/**
 * Issue 3's failover measure: the time from a fault of the active (step-down, SIGTERM, kill -9)
 * until a client going through a standby is served again. The client sends KV reads through a
 * surviving standby back to back; "served again" is the end of the first successful request
 * that started after both the fault and the last failed request.
 */
import { Agent, request } from 'undici';
import { type Fault, inject, restore } from '../sections/failover';
import type { BenchCluster } from './cluster';
import { call, kvBody } from './http';
import type { Sample } from './recording-load';
import { sleep } from './stats';

/** Pause after a failed request (a 503 or 307 comes back at once; do not spin). */
const FAILURE_PAUSE_MS = 5;
/** Load before the fault. */
const BASELINE_MS = 500;
/** After recovery, keep watching this long to be sure no failure follows. */
const CONFIRM_MS = 1_000;

export interface StandbyRun {
  fault: Fault;
  from: string;
  to: string;
  via: string;
  /** Fault → served again (ms). */
  servedAgainMs: number;
  failures: number;
  failureCodes: Record<string, number>;
  longestMs: number;
  /** True if the client was not served again within the observation. */
  censored: boolean;
}

export interface StandbyFailoverResult {
  lockTtl: string;
  runsEach: number;
  runs: StandbyRun[];
}

/** Longest observation: a kill -9 waits for the lock TTL, plus election and discovery. */
function observeMs(fault: Fault, ttlMs: number): number {
  return fault === 'kill-9' ? ttlMs + 5_000 : 5_000;
}

/** Parses `5s` / `500ms` (the TTL format the nodes take). */
export function parseDurationMs(s: string): number {
  const m = /^(\d+(?:\.\d+)?)(ms|s)$/.exec(s);
  if (!m) throw new Error(`bad duration ${s}`);
  return Number(m[1]) * (m[2] === 's' ? 1000 : 1);
}

function servedAgain(samples: Sample[], faultAt: number): { at: number; lastFailure: number } | null {
  const ok = (s: Sample) => s.status >= 200 && s.status < 300;
  const failures = samples.filter((s) => !ok(s) && s.end >= faultAt);
  const lastFailure = failures.length ? Math.max(...failures.map((s) => s.end)) : faultAt;
  const first = samples.find((s) => ok(s) && s.start >= faultAt && s.start >= lastFailure);
  return first ? { at: first.end, lastFailure } : null;
}

export async function measureStandbyFailover(
  c: BenchCluster,
  faults: Fault[],
  runsEach: number,
  log: (m: string) => void,
): Promise<StandbyFailoverResult> {
  const ttlMs = parseDurationMs(c.lockTtl);
  const runs: StandbyRun[] = [];
  const agent = new Agent({
    connections: 1,
    keepAliveTimeout: 4_000,
    connect: { rejectUnauthorized: false },
  });
  const key = '/v1/secret/data/bench/standby-failover';
  try {
    for (let run = 0; run < runsEach; run++) {
      for (const fault of faults) {
        const active = await c.settle();
        const via = c.standbys(active)[0];
        if (!via) throw new Error('no standby');
        const seeded = await call(active.apiUrl, key, { token: c.token, body: kvBody(1024) });
        if (seeded.status !== 200) throw new Error(`seed: ${seeded.status}`);
        const samples: Sample[] = [];
        let running = true;
        const loop = (async () => {
          while (running) {
            const start = performance.now();
            let status = 0;
            try {
              const r = await request(via.apiUrl + key, {
                headers: { 'x-vault-token': c.token },
                dispatcher: agent,
                signal: AbortSignal.timeout(30_000),
              });
              await r.body.dump();
              status = r.statusCode;
            } catch {
              status = 0;
            }
            samples.push({ start, end: performance.now(), op: 'read', status });
            if (status !== 200) await sleep(FAILURE_PAUSE_MS);
          }
        })();
        await sleep(BASELINE_MS);
        const faultAt = await inject(c, active, fault);
        const deadline = faultAt + observeMs(fault, ttlMs);
        let served: ReturnType<typeof servedAgain> = null;
        while (performance.now() < deadline) {
          await sleep(50);
          served = servedAgain(samples, faultAt);
          if (served && performance.now() - served.at >= CONFIRM_MS) break;
        }
        running = false;
        await loop;
        served = servedAgain(samples, faultAt);
        const after = samples.filter((s) => s.end >= faultAt);
        const failed = after.filter((s) => s.status !== 200);
        const failureCodes: Record<string, number> = {};
        for (const f of failed) failureCodes[String(f.status)] = (failureCodes[String(f.status)] ?? 0) + 1;
        const next = await c.waitActive(fault === 'step-down' ? active : undefined);
        const r: StandbyRun = {
          fault,
          from: active.name,
          to: next.name,
          via: via.name,
          servedAgainMs: served ? served.at - faultAt : deadline - faultAt,
          failures: failed.length,
          failureCodes,
          longestMs: Math.max(0, ...after.map((s) => s.end - s.start)),
          censored: served === null,
        };
        runs.push(r);
        log(
          `standby failover ${fault} #${run + 1} ${r.from}→${r.to} via ${r.via}: served again after ` +
            `${Math.round(r.servedAgainMs)} ms (${r.failures} failed: ${JSON.stringify(failureCodes)})`,
        );
        await restore(c, active, fault);
      }
    }
  } finally {
    await agent.close();
  }
  return { lockTtl: c.lockTtl, runsEach, runs };
}
