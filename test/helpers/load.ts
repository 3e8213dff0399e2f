/**
 * A bounded client load for failover tests: `workers` loops of KV reads (and writes, for the
 * mixed load) through one URL until `stop` is called, recording every failure.
 */
import { Agent, request } from 'undici';

export interface LoadResult {
  ok: number;
  failures: Array<{ op: string; status: number; detail: string }>;
  /** The longest single request, in ms. */
  maxLatencyMs: number;
}

export interface Load {
  stop(): Promise<LoadResult>;
}

/** Safety bound: a load never runs longer than this, even if a test forgets to stop it. */
const MAX_LOAD_MS = 60_000;

/** Starts the load; keys `load-<i>` must already exist for reads (the load writes them first). */
export async function startLoad(o: {
  base: string;
  token: string;
  workers: number;
  mixed: boolean;
}): Promise<Load> {
  const agent = new Agent({ connections: o.workers, keepAliveTimeout: 4_000 });
  const result: LoadResult = { ok: 0, failures: [], maxLatencyMs: 0 };
  let running = true;
  const hardStop = setTimeout(() => {
    running = false;
  }, MAX_LOAD_MS);
  const one = async (op: string, method: 'GET' | 'POST', path: string, body?: string) => {
    const t = performance.now();
    try {
      const r = await request(o.base + path, {
        method,
        dispatcher: agent,
        headers: { 'x-vault-token': o.token, 'content-type': 'application/json' },
        body,
      });
      const text = await r.body.text();
      if (r.statusCode >= 200 && r.statusCode < 300) result.ok++;
      else result.failures.push({ op, status: r.statusCode, detail: text.slice(0, 200) });
    } catch (err) {
      result.failures.push({ op, status: 0, detail: String((err as Error).message) });
    }
    result.maxLatencyMs = Math.max(result.maxLatencyMs, performance.now() - t);
  };
  for (let i = 0; i < o.workers; i++) {
    await one('seed', 'POST', `/v1/secret/data/load-${i}`, JSON.stringify({ data: { n: 0 } }));
  }
  result.ok = 0;
  result.failures.length = 0;
  const loops = Array.from({ length: o.workers }, async (_, i) => {
    let n = 0;
    while (running) {
      await one('read', 'GET', `/v1/secret/data/load-${i}`);
      if (o.mixed && running)
        await one('write', 'POST', `/v1/secret/data/load-${i}`, JSON.stringify({ data: { n: ++n } }));
    }
  });
  return {
    async stop() {
      running = false;
      await Promise.all(loops);
      clearTimeout(hardStop);
      await agent.close();
      return result;
    },
  };
}
