/**
 * Closed-loop HTTP load with autocannon (programmatic API), with the CPU time of the processes
 * under test and the peak RSS of one of them measured over exactly the same window.
 */
import { availableParallelism } from 'node:os';
import { cpuMeter, foreignMeter, quiesce, sampleRss } from './proc-stats';

/** The subset of autocannon's options and result this bench uses (the package ships no types). */
interface AutocannonClient {
  setRequests(requests: AutocannonRequest[]): void;
}
interface AutocannonRequest {
  method: string;
  path: string;
  body?: string;
  headers?: Record<string, string>;
}
interface AutocannonResult {
  duration: number;
  errors: number;
  timeouts: number;
  non2xx: number;
  '2xx': number;
  latency: { p50: number; p99: number; max: number; average: number };
  requests: { total: number; sent: number };
  statusCodeStats: Record<string, { count: number }>;
}
type Autocannon = (opts: Record<string, unknown>) => Promise<AutocannonResult>;
// autocannon is CommonJS without type declarations: typed locally above.
const autocannon = require('autocannon') as Autocannon;

/** One load: `connections` keep-alive connections sending the same kind of request. */
export interface LoadSpec {
  /** Where to send; several: connection i goes to url[i % n] (autocannon's own spreading). */
  url: string | string[];
  connections: number;
  durationS: number;
  method: 'GET' | 'POST';
  /** A fixed path, or one per connection (writes: each connection its own key, no lock contention). */
  path: string | ((connection: number) => string);
  body?: string;
  token: string;
  /** A request still unanswered after this counts as a timeout (autocannon's default is 10 s). */
  timeoutS?: number;
}

/** What one load measured. */
export interface LoadResult {
  connections: number;
  durationS: number;
  /** Successful (2xx) responses per second. */
  rps: number;
  p50: number;
  p99: number;
  maxMs: number;
  /** Failed requests: connection errors, timeouts and non-2xx responses. */
  errors: number;
  /** Of which timeouts (no answer within `timeoutS`). */
  timeouts: number;
  statusCodes: Record<string, number>;
  /** CPU milliseconds per 1,000 responses, per watched process. */
  cpuPer1k: Record<string, number>;
  /** Peak RSS (MiB) of the `rssPid` process during the load. */
  rssMb?: number;
  /** CPU used by processes outside the bench during the load, % of all cores (noise indicator). */
  foreignCpuPct?: number;
}

/** Which processes to meter while the load runs. */
export interface Watch {
  cpu?: Record<string, number | undefined>;
  rssPid?: number;
  /** Every pid of the bench (to tell other work on the machine apart). */
  ours?: () => number[];
  /** Skip waiting for a quiet system before the load (to measure a disturbance on purpose). */
  noQuiesce?: boolean;
}

/** Runs one load and meters the watched processes over the same window. */
export async function runLoad(spec: LoadSpec, watch: Watch = {}): Promise<LoadResult> {
  // Measured loads start from a quiet system (the previous load fully drained).
  if (watch.ours && !watch.noQuiesce) await quiesce(watch.ours());
  const headers: Record<string, string> = { 'x-vault-token': spec.token };
  if (spec.body !== undefined) headers['content-type'] = 'application/json';
  const pathFor = typeof spec.path === 'function' ? spec.path : () => spec.path as string;
  let next = 0;
  const cpu = cpuMeter(watch.cpu ?? {});
  const rss = watch.rssPid !== undefined ? sampleRss(watch.rssPid) : undefined;
  const foreign = watch.ours ? foreignMeter(watch.ours, availableParallelism()) : undefined;
  const r = await autocannon({
    url: spec.url,
    connections: spec.connections,
    duration: spec.durationS,
    timeout: spec.timeoutS ?? 10,
    headers,
    method: spec.method,
    body: spec.body,
    path: pathFor(0),
    // Built once per connection: a per-request setupRequest would re-serialise large bodies.
    setupClient: (client: AutocannonClient) => {
      const i = next++;
      client.setRequests([{ method: spec.method, path: pathFor(i), body: spec.body, headers }]);
    },
  });
  const cpuMs = cpu.stop();
  const rssMb = rss?.stop();
  const foreignCpuPct = foreign?.stop();
  const responses = r.requests.total;
  const cpuPer1k: Record<string, number> = {};
  for (const [name, ms] of Object.entries(cpuMs))
    cpuPer1k[name] = responses > 0 ? (ms * 1000) / responses : Number.NaN;
  const statusCodes: Record<string, number> = {};
  for (const [code, s] of Object.entries(r.statusCodeStats)) statusCodes[code] = s.count;
  return {
    connections: spec.connections,
    durationS: r.duration,
    rps: r['2xx'] / r.duration,
    p50: r.latency.p50,
    p99: r.latency.p99,
    maxMs: r.latency.max,
    // autocannon counts a timeout in `errors` too.
    errors: r.errors + r.non2xx,
    timeouts: r.timeouts,
    statusCodes,
    cpuPer1k,
    rssMb,
    foreignCpuPct,
  };
}
