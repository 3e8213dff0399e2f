/** A small HTTP client for tests (undici's request: no redirects followed, no retries). */
import { Agent, type Dispatcher, request } from 'undici';

/** A response with its body parsed as JSON when it is JSON. */
export interface TestResponse {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: unknown;
  text: string;
}

export interface CallOptions {
  method?: string;
  token?: string;
  body?: unknown;
  headers?: Record<string, string>;
  /** Connection pool to send through (e.g. one bound to a source address: `Sources`). */
  dispatcher?: Dispatcher;
}

/** Calls `base + path`. */
export async function call(base: string, path: string, o: CallOptions = {}): Promise<TestResponse> {
  const headers: Record<string, string> = { ...o.headers };
  if (o.token) headers['x-vault-token'] = o.token;
  let body: string | undefined;
  if (o.body !== undefined) {
    body = typeof o.body === 'string' ? o.body : JSON.stringify(o.body);
    headers['content-type'] ??= 'application/json';
  }
  const r = await request(base + path, {
    method: (o.method ?? (body !== undefined ? 'POST' : 'GET')) as 'GET',
    headers,
    body,
    dispatcher: o.dispatcher,
  });
  const text = await r.body.text();
  let parsed: unknown = text;
  if (String(r.headers['content-type'] ?? '').includes('json') && text) {
    try {
      parsed = JSON.parse(text);
    } catch {
      parsed = text;
    }
  }
  return { status: r.statusCode, headers: r.headers, body: parsed, text };
}

/** PUT sys/init and return the root token. */
export async function initCluster(base: string): Promise<string> {
  const r = await call(base, '/v1/sys/init', { method: 'PUT', body: {} });
  if (r.status !== 200) throw new Error(`init failed: ${r.status} ${r.text}`);
  return (r.body as { root_token: string }).root_token;
}

/** The sum of a metric's series on a Prometheus text page (only series whose labels contain `labels`). */
export function metricSum(text: string, name: string, labels = ''): number {
  let n = 0;
  for (const m of text.matchAll(new RegExp(`^${name}(\\{[^}]*\\})? (\\S+)$`, 'gm')))
    if ((m[1] ?? '').includes(labels)) n += Number(m[2]);
  return n;
}

/** `metricSum` of a process's metrics listener (`metricsUrl`: `http://host:port`). */
export async function scrapeMetric(metricsUrl: string, name: string, labels = ''): Promise<number> {
  return metricSum((await call(metricsUrl, '/metrics')).text, name, labels);
}

/** Connection pools by local (source) address: requests to a node from chosen loopback addresses. */
export class Sources {
  private readonly agents = new Map<string, Agent>();

  agent(addr: string): Agent {
    let a = this.agents.get(addr);
    if (!a) {
      a = new Agent({ localAddress: addr });
      this.agents.set(addr, a);
    }
    return a;
  }

  close(): Promise<unknown> {
    return Promise.all([...this.agents.values()].map((a) => a.close()));
  }
}
