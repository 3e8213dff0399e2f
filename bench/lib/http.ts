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
