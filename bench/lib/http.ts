/**
 * A small HTTP(S) client for orchestration (init, seeding, health, step-down): undici with
 * certificate verification off, because the nodes' API certificate is self-signed for the bench.
 */
import { Agent, request } from 'undici';

const agent = new Agent({ connect: { rejectUnauthorized: false }, keepAliveTimeout: 1_000 });

/** Each orchestration request gives up after this; nothing here should take longer. */
const CALL_TIMEOUT_MS = 10_000;

/** A response with its text body. */
export interface BenchResponse {
  status: number;
  text: string;
  json<T>(): T;
}

/** Calls `base + path` once (no redirects followed, no retries). */
export async function call(
  base: string,
  path: string,
  o: { method?: string; token?: string; body?: unknown; timeoutMs?: number } = {},
): Promise<BenchResponse> {
  const headers: Record<string, string> = {};
  if (o.token) headers['x-vault-token'] = o.token;
  let body: string | undefined;
  if (o.body !== undefined) {
    body = typeof o.body === 'string' ? o.body : JSON.stringify(o.body);
    headers['content-type'] = 'application/json';
  }
  const r = await request(base + path, {
    method: (o.method ?? (body === undefined ? 'GET' : 'POST')) as 'GET',
    headers,
    body,
    dispatcher: agent,
    signal: AbortSignal.timeout(o.timeoutMs ?? CALL_TIMEOUT_MS),
  });
  const text = await r.body.text();
  return { status: r.statusCode, text, json: <T>() => JSON.parse(text) as T };
}

/** Like `call` but resolves `null` instead of throwing on a connection failure. */
export async function tryCall(
  base: string,
  path: string,
  o: Parameters<typeof call>[2] = {},
): Promise<BenchResponse | null> {
  try {
    return await call(base, path, o);
  } catch {
    return null;
  }
}

/** Closes the shared agent (end of a run). */
export function closeHttp(): Promise<void> {
  return agent.close();
}

/** A KV v2 write body carrying a value of `bytes` bytes. */
export function kvBody(bytes: number, tag = 'v'): string {
  return JSON.stringify({ data: { [tag]: 'x'.repeat(bytes) } });
}

/** How long a fresh node may take to read its storage (PostgreSQL: create its tables) before init. */
const UNINITIALIZED_TIMEOUT_MS = 30_000;

/**
 * PUT sys/init once the node reports itself uninitialized (sys/health 501), and returns the root
 * token. Until it has read its storage a node answers init "already initialized" (its seal state
 * is not known yet): on PostgreSQL, with the machine busy, init sent as soon as the node listens
 * was refused so.
 */
export async function initWhenUninitialized(base: string): Promise<string> {
  const deadline = performance.now() + UNINITIALIZED_TIMEOUT_MS;
  while ((await tryCall(base, '/v1/sys/health'))?.status !== 501) {
    if (performance.now() > deadline) throw new Error(`${base} never reported itself uninitialized`);
    await new Promise((r) => setTimeout(r, 50));
  }
  const r = await call(base, '/v1/sys/init', { method: 'PUT', body: {} });
  if (r.status !== 200) throw new Error(`init failed: ${r.status} ${r.text}`);
  return r.json<{ root_token: string }>().root_token;
}
