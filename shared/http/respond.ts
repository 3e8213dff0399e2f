/**
 * Vault-shaped HTTP answers: JSON bodies, `{"errors":[...]}` for errors, and
 * `Cache-Control: no-store` on every response. Works on HTTP/1.1 and HTTP/2 compat responses.
 */
import type { ServerResponse } from 'node:http';
import type { Http2ServerResponse } from 'node:http2';
import { LwError } from '../errors';

/** A response on either the HTTP/1.1 or the HTTP/2 compat API. */
export type AnyResponse = ServerResponse | Http2ServerResponse;

/** Headers every response carries. */
export const BASE_HEADERS = { 'cache-control': 'no-store' } as const;

/** Sends `body` as JSON (or no body for 204 / HEAD). */
export function sendJson(
  res: AnyResponse,
  status: number,
  body: unknown,
  headers: Record<string, string> = {},
  head = false,
): void {
  if (res.headersSent) {
    res.destroy();
    return;
  }
  if (status === 204 || body === undefined) {
    res.writeHead(status, { ...BASE_HEADERS, ...headers });
    res.end();
    return;
  }
  const text = JSON.stringify(body);
  res.writeHead(status, {
    ...BASE_HEADERS,
    'content-type': 'application/json',
    'content-length': String(Buffer.byteLength(text)),
    ...headers,
  });
  if (head) res.end();
  else res.end(text);
}

/** Sends `{"errors":[message]}` with the error's status (and Retry-After when it has one). */
export function sendError(res: AnyResponse, err: LwError, extraHeaders: Record<string, string> = {}): void {
  const headers: Record<string, string> = { ...extraHeaders };
  if (err.retryAfter !== undefined) headers['retry-after'] = String(err.retryAfter);
  // Vault answers a missing resource with an empty errors list.
  const errors = err.code === 'LW_ERR_NOT_FOUND' && err.message === '' ? [] : [err.message];
  sendJson(res, err.status, { errors }, headers);
}

/** Turns anything thrown into an LwError that is safe to show a client. */
export function toLwError(err: unknown): LwError {
  if (err instanceof LwError) return err;
  return new LwError('LW_ERR_INTERNAL', 'internal error');
}
