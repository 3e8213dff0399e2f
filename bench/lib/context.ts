/** What every section receives, and how a section reports progress. */
import type { BenchCluster } from './cluster';
import type { Watch } from './load';

/** Shared state for the sections of one run. */
export interface SectionContext {
  cluster: BenchCluster;
  quick: boolean;
  log(message: string): void;
}

/** CPU/RSS meters for a load through the cluster (gateway, HAProxy, the active, Redis, ...). */
export function clusterWatch(
  c: BenchCluster,
  extra: Record<string, number | undefined> = {},
  rssPid = c.gateway?.child.pid,
): Watch {
  return {
    cpu: { gateway: c.gateway?.child.pid, haproxy: c.haproxy?.pid, redis: c.redisPid, ...extra },
    rssPid,
    ours: () => [...c.pids(), ...Object.values(extra).filter((p): p is number => p !== undefined)],
  };
}

/** Prints a progress line with the elapsed time of the run. */
export function makeLogger(started = performance.now()): (message: string) => void {
  return (message) => {
    const s = ((performance.now() - started) / 1000).toFixed(0).padStart(4);
    process.stderr.write(`[bench ${s}s] ${message}\n`);
  };
}
