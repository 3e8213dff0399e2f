/**
 * How many reads standbys served themselves during a chaos run: every node's
 * `leaderway_standby_reads_total{outcome}` scraped from its metrics listener every couple of
 * seconds and at the end, the last value kept per process (a killed node's count is kept as last
 * scraped, so the totals are a lower bound).
 */
import { request } from 'undici';
import { metricSum } from '../helpers/http';
import type { ChaosCluster } from './cluster';

const SCRAPE_EVERY_MS = 2_000;
const SCRAPE_TIMEOUT_MS = 1_000;
const METRIC = 'leaderway_standby_reads_total';

export interface StandbyReads {
  served: number;
  forwarded: number;
  /** node name → reads it served as a standby. */
  servedBy: Record<string, number>;
}

export class StandbyReadsWatch {
  private readonly last = new Map<string, { served: number; forwarded: number }>();
  private timer: NodeJS.Timeout | undefined;
  private busy = false;

  constructor(private readonly cluster: ChaosCluster) {}

  start(): void {
    this.timer = setInterval(() => void this.scrape(), SCRAPE_EVERY_MS);
    this.timer.unref();
  }

  /** A final scrape of the live nodes, then the totals. */
  async stop(): Promise<StandbyReads> {
    clearInterval(this.timer);
    while (this.busy) await new Promise((r) => setTimeout(r, 50));
    await this.scrape();
    const servedBy: Record<string, number> = {};
    let served = 0;
    let forwarded = 0;
    for (const [name, c] of this.last) {
      servedBy[name] = c.served;
      served += c.served;
      forwarded += c.forwarded;
    }
    return { served, forwarded, servedBy };
  }

  private async scrape(): Promise<void> {
    if (this.busy) return;
    this.busy = true;
    try {
      await Promise.all(
        this.cluster.nodes
          .filter((n) => n.metricsUrl !== '')
          .map(async (n) => {
            try {
              const res = await request(`${n.metricsUrl}/metrics`, {
                signal: AbortSignal.timeout(SCRAPE_TIMEOUT_MS),
              });
              const text = await res.body.text();
              if (res.statusCode !== 200) return;
              this.last.set(n.name, {
                served: metricSum(text, METRIC, 'outcome="served"'),
                forwarded: metricSum(text, METRIC, 'outcome="forwarded"'),
              });
            } catch {
              // Stopped, paused or killed: keep the last value.
            }
          }),
      );
    } finally {
      this.busy = false;
    }
  }
}
