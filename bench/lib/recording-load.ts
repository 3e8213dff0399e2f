/**
 * A paced read+write load that records every request (start, end, outcome), for failover
 * windows where totals are not enough: which requests failed, the longest one, and when
 * throughput came back. `workers` loops each alternate a KV read and a KV write of their own key,
 * each at most `ratePerWorker` requests per second (a late loop does not burst to catch up).
 * Pacing keeps the offered load well under capacity, so a dip in throughput means requests were
 * held or failing — not that another load on the same 2 cores took the CPU.
 */
import { Agent, request } from 'undici';
import { kvBody } from './http';

/** One request. Times are `performance.now()` milliseconds. */
export interface Sample {
  start: number;
  end: number;
  op: 'read' | 'write';
  /** HTTP status, or 0 for a connection error / timeout. */
  status: number;
  /** A 503 saying the request's outcome is unknown (it may have been applied). */
  unknown?: true;
  /** A 503's error message, cut short (which 503 it was). */
  reason?: string;
}

/** Enough of an error message to tell the 503s apart. */
const REASON_CHARS = 60;

/** The first message of a Vault-shaped error body, cut to {@link REASON_CHARS}. */
function reasonOf(text: string): string {
  try {
    const errors = (JSON.parse(text) as { errors?: unknown }).errors;
    if (Array.isArray(errors) && typeof errors[0] === 'string') return errors[0].slice(0, REASON_CHARS);
  } catch {
    // Not JSON: the raw text below.
  }
  return text.slice(0, REASON_CHARS);
}

/** The phrase every "outcome unknown" error carries (shared/errors.ts messages). */
const OUTCOME_UNKNOWN = 'outcome is unknown';

/** A request is abandoned (counted as failed) after this: longer than any failover wait. */
const REQUEST_TIMEOUT_MS = 30_000;
/** Safety bound: the load stops itself after this even if nobody calls stop(). */
const MAX_LOAD_MS = 120_000;

export interface RecordingLoad {
  stop(): Promise<Sample[]>;
}

/** Starts the load after writing each worker's key once (seed failures throw). */
export async function startRecordingLoad(o: {
  base: string;
  token: string;
  workers: number;
  keyPrefix: string;
  valueBytes: number;
  ratePerWorker: number;
}): Promise<RecordingLoad> {
  const intervalMs = 1000 / o.ratePerWorker;
  const agent = new Agent({
    connections: o.workers,
    keepAliveTimeout: 4_000,
    headersTimeout: REQUEST_TIMEOUT_MS,
    bodyTimeout: REQUEST_TIMEOUT_MS,
    connect: { rejectUnauthorized: false },
  });
  const samples: Sample[] = [];
  const body = kvBody(o.valueBytes);
  const headers = { 'x-vault-token': o.token, 'content-type': 'application/json' };
  const one = async (op: Sample['op'], path: string): Promise<number> => {
    const start = performance.now();
    let status = 0;
    let unknown = false;
    let reason: string | undefined;
    try {
      const r = await request(o.base + path, {
        method: op === 'read' ? 'GET' : 'POST',
        headers,
        body: op === 'write' ? body : undefined,
        dispatcher: agent,
        signal: AbortSignal.timeout(REQUEST_TIMEOUT_MS),
      });
      // Only a 503's body is read: the rest are dumped unparsed, as before.
      if (r.statusCode === 503) {
        const text = await r.body.text();
        unknown = text.includes(OUTCOME_UNKNOWN);
        reason = reasonOf(text);
      } else await r.body.dump();
      status = r.statusCode;
    } catch {
      status = 0;
    }
    samples.push({
      start,
      end: performance.now(),
      op,
      status,
      ...(unknown ? { unknown: true as const } : {}),
      ...(reason === undefined ? {} : { reason }),
    });
    return status;
  };
  for (let i = 0; i < o.workers; i++) {
    const s = await one('write', `/v1/secret/data/${o.keyPrefix}-${i}`);
    if (s !== 200) throw new Error(`seeding ${o.keyPrefix}-${i} through ${o.base}: status ${s}`);
  }
  samples.length = 0;
  let running = true;
  const hardStop = setTimeout(() => {
    running = false;
  }, MAX_LOAD_MS);
  const loops = Array.from({ length: o.workers }, async (_, i) => {
    const path = `/v1/secret/data/${o.keyPrefix}-${i}`;
    // Spread the workers' start times over one interval.
    let next = performance.now() + (i * intervalMs) / o.workers;
    let n = 0;
    while (running) {
      const wait = next - performance.now();
      if (wait > 0) await new Promise((r) => setTimeout(r, wait));
      if (!running) break;
      next = Math.max(next + intervalMs, performance.now());
      await one(n++ % 2 === 0 ? 'read' : 'write', path);
    }
  });
  return {
    async stop() {
      running = false;
      await Promise.all(loops);
      clearTimeout(hardStop);
      await agent.close();
      return samples;
    },
  };
}

/** Failure and recovery figures of one path for one fault. */
export interface WindowStats {
  ok: number;
  failedReads: number;
  failedWrites: number;
  /** Status codes of the failures (0 = connection error or timeout). */
  failureCodes: Record<string, number>;
  /** Of the failures, 503s saying the outcome is unknown (absent in older results). */
  outcomeUnknown?: number;
  /** The 503s by error message (cut short; absent in older results). */
  reasons503?: Record<string, number>;
  /** Longest single request that overlapped the fault window (ms). */
  longestMs: number;
  /** From the first failure to the end of the last (ms; 0 when none failed). */
  errorWindowMs: number;
  /** From the fault until throughput was back to half its pre-fault rate for good (ms). */
  recoveryMs: number;
  /** True when throughput had not recovered by the end of the observation. */
  recoveryCensored: boolean;
  baselineRps: number;
  /** Successful responses per bucket from the fault on (the throughput timeline). */
  timeline: number[];
  /** Failed requests per bucket from the fault on, by when they ended (absent in older results). */
  failTimeline?: number[];
}

function countBy(xs: string[]): Record<string, number> {
  const out: Record<string, number> = {};
  for (const x of xs) out[x] = (out[x] ?? 0) + 1;
  return out;
}

/** Bucket width for the throughput timeline. */
export const BUCKET_MS = 250;
/** Throughput counts as recovered at this fraction of the pre-fault rate. */
export const RECOVERY_FRACTION = 0.5;

/**
 * Analyses samples around a fault at `faultAt`; `baselineFrom` starts the pre-fault window and
 * `until` ends the observation.
 */
export function analyseWindow(
  samples: Sample[],
  faultAt: number,
  baselineFrom: number,
  until: number,
): WindowStats {
  const ok = (s: Sample) => s.status >= 200 && s.status < 300;
  const during = samples.filter((s) => s.end >= faultAt && s.start <= until);
  const failed = during.filter((s) => !ok(s));
  const failureCodes: Record<string, number> = {};
  for (const f of failed) failureCodes[String(f.status)] = (failureCodes[String(f.status)] ?? 0) + 1;
  const baselineOk = samples.filter((s) => ok(s) && s.end >= baselineFrom && s.end < faultAt).length;
  const perBucket = (baselineOk / (faultAt - baselineFrom)) * BUCKET_MS;
  // Whole milliseconds: `(faultAt + 10_000) - faultAt` can come out a hair over 10,000, and the
  // ceiling would add an empty sliver of a bucket that counts as "not recovered".
  const buckets = Math.ceil(Math.round(until - faultAt) / BUCKET_MS);
  const counts = new Array<number>(buckets).fill(0);
  const fails = new Array<number>(buckets).fill(0);
  for (const s of samples) {
    if (s.end < faultAt || s.end >= until) continue;
    const b = Math.floor((s.end - faultAt) / BUCKET_MS);
    const into = ok(s) ? counts : fails;
    into[b] = (into[b] ?? 0) + 1;
  }
  let lastBad = -1;
  counts.forEach((n, i) => {
    if (n < perBucket * RECOVERY_FRACTION) lastBad = i;
  });
  return {
    ok: during.length - failed.length,
    failedReads: failed.filter((s) => s.op === 'read').length,
    failedWrites: failed.filter((s) => s.op === 'write').length,
    failureCodes,
    outcomeUnknown: failed.filter((s) => s.unknown).length,
    reasons503: countBy(failed.flatMap((s) => (s.reason === undefined ? [] : [s.reason]))),
    longestMs: Math.max(0, ...during.map((s) => s.end - s.start)),
    errorWindowMs: failed.length
      ? Math.max(...failed.map((s) => s.end)) - Math.min(...failed.map((s) => s.start))
      : 0,
    recoveryMs: (lastBad + 1) * BUCKET_MS,
    recoveryCensored: lastBad === buckets - 1,
    baselineRps: (baselineOk / (faultAt - baselineFrom)) * 1000,
    timeline: counts,
    failTimeline: fails,
  };
}
