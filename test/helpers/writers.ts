/**
 * Clients that write increasing values to their own key through `base` and read each back, until
 * stopped: the tally says which reads failed, which writes failed other than "outcome unknown",
 * the highest acknowledged value per key (to check none is lost) and the longest request. Used
 * by the Sentinel integration test and the bench's replication section.
 */
import { request } from 'undici';

export interface Tally {
  reads: number;
  writes: number;
  /** Per key, the highest value whose write was acknowledged. */
  acked: Map<string, number>;
  failedReads: string[];
  /** Write failures other than "outcome unknown". */
  failedWrites: string[];
  unknown: number;
  longestMs: number;
}

/** Workers that write increasing values to their own key and read it back, until stopped. */
export function startWriters(
  base: string,
  token: string,
  workers = 4,
): { tally: Tally; stop(): Promise<Tally> } {
  const t: Tally = {
    reads: 0,
    writes: 0,
    acked: new Map(),
    failedReads: [],
    failedWrites: [],
    unknown: 0,
    longestMs: 0,
  };
  let running = true;
  const loops = Array.from({ length: workers }, async (_, w) => {
    const key = `sentinel-${w}`;
    for (let n = 1; running; n++) {
      let started = performance.now();
      const wr = await request(`${base}/v1/secret/data/${key}`, {
        method: 'POST',
        headers: { 'x-vault-token': token, 'content-type': 'application/json' },
        body: JSON.stringify({ data: { n } }),
      }).catch((err: Error) => ({ statusCode: 0, body: { text: async () => err.message } }));
      const text = await wr.body.text();
      t.longestMs = Math.max(t.longestMs, performance.now() - started);
      if (wr.statusCode === 200) {
        t.writes++;
        t.acked.set(key, n);
      } else if (wr.statusCode === 503 && text.includes('outcome is unknown')) t.unknown++;
      else t.failedWrites.push(`${wr.statusCode} ${text.slice(0, 120)}`);
      started = performance.now();
      const rd = await request(`${base}/v1/secret/data/${key}`, {
        headers: { 'x-vault-token': token },
      }).catch((err: Error) => ({ statusCode: 0, body: { text: async () => err.message } }));
      const rtext = await rd.body.text();
      t.longestMs = Math.max(t.longestMs, performance.now() - started);
      if (rd.statusCode === 200 || (rd.statusCode === 404 && !t.acked.has(key))) t.reads++;
      else t.failedReads.push(`${rd.statusCode} ${rtext.slice(0, 120)}`);
    }
  });
  return {
    tally: t,
    async stop() {
      running = false;
      await Promise.all(loops);
      return t;
    },
  };
}
