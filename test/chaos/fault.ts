/** The shape of a fault (faults.ts, sentinel-faults.ts): it acts on the cluster and reports. */
import type { ChaosCluster } from './cluster';
import type { Rng } from './rng';

/** What a fault did, for the history. */
export interface FaultResult {
  target: string;
  detail?: string;
  /** Problems the fault itself observed (e.g. SIGTERM did not exit 0). */
  violations: string[];
}

export type Fault = (c: ChaosCluster, r: Rng) => Promise<FaultResult>;
