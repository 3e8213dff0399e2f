/**
 * Vault-shaped HTTP answers: JSON bodies, `{"errors":[...]}` for errors, and
 * `Cache-Control: no-store` on every response. Works on HTTP/1.1 and HTTP/2 compat responses.
 */
import { type ServerResponse, STATUS_CODES } from 'node:http';
import type { Http2ServerResponse } from 'node:http2';
import { LwError } from '../errors';

/** A response on either the HTTP/1.1 or the HTTP/2 compat API. */
export type AnyResponse = ServerResponse | Http2ServerResponse;

/** Headers every response carries. */
export const BASE_HEADERS = { 'cache-control': 'no-store' } as const;

/**
 * A body longer than this (in characters) is written in slices of it, each once the connection
 * took the previous one. Written whole, a large answer is copied out of its string and encrypted
 * in one piece, and the TLS connection's output buffer, sized for that one write
 * (nodejs/node#31499), stays that size for the connection's life: 160 reads of a 4 MiB secret
 * through a gateway left ~4 MiB on each of its 128 pooled connections to the active, ~500 MiB in
 * all. In slices, a connection holds about one slice.
 */
export const WRITE_SLICE_CHARS = 64 * 1024;

/**
 * A body sent as it is, with its own content type, instead of as JSON: a route's Reply may carry
 * one (sys/metrics answers Prometheus text).
 */
export class RawBody {
  constructor(
    readonly text: string,
    readonly contentType: string,
  ) {}
}

/** Sends `body` as JSON, a RawBody as it is (no body for 204 / HEAD). */
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
  const raw = body instanceof RawBody;
  const text = raw ? body.text : JSON.stringify(body);
  res.writeHead(status, {
    ...BASE_HEADERS,
    'content-type': raw ? body.contentType : 'application/json',
    'content-length': String(Buffer.byteLength(text)),
    ...headers,
  });
  if (head) res.end();
  else if (text.length <= WRITE_SLICE_CHARS) res.end(text);
  else writeInSlices(res, text);
}

/**
 * Writes `text` a slice at a time, waiting for 'drain' whenever the connection is backed up.
 * A slice never ends between the two halves of a surrogate pair (each half alone is not valid
 * UTF-8), so the bytes sent are exactly `Buffer.byteLength(text)`. A connection that closes
 * meanwhile never drains: the writing stops with it.
 */
function writeInSlices(res: AnyResponse, text: string): void {
  // Both kinds of response take a string chunk; their overloads only differ in callback types.
  const out = res as ServerResponse;
  let at = 0;
  const pump = (): void => {
    while (at < text.length) {
      let end = Math.min(text.length, at + WRITE_SLICE_CHARS);
      if (end < text.length && isHighSurrogate(text.charCodeAt(end - 1))) end--;
      const more = out.write(text.slice(at, end));
      at = end;
      if (!more) {
        out.once('drain', pump);
        return;
      }
    }
    out.end();
  };
  pump();
}

function isHighSurrogate(code: number): boolean {
  return code >= 0xd800 && code <= 0xdbff;
}

/** The one shape of an error body: `{"errors":[message]}` (empty for Vault's bare 404). */
function errorBody(err: LwError): { errors: string[] } {
  return { errors: err.code === 'LW_ERR_NOT_FOUND' && err.message === '' ? [] : [err.message] };
}

/** Sends `{"errors":[message]}` with the error's status (and Retry-After when it has one). */
export function sendError(
  res: AnyResponse,
  err: LwError,
  extraHeaders: Record<string, string> = {},
  head = false,
): void {
  const headers: Record<string, string> = { ...extraHeaders };
  if (err.retryAfter !== undefined) headers['retry-after'] = String(err.retryAfter);
  sendJson(res, err.status, errorBody(err), headers, head);
}

/**
 * The same answer as raw HTTP/1.1 bytes, ending the connection, for the places that own a bare
 * socket (a request Node could not parse, an upgrade that cannot proceed).
 */
export function rawErrorResponse(err: LwError): string {
  const body = JSON.stringify(errorBody(err));
  const retry = err.retryAfter === undefined ? '' : `retry-after: ${err.retryAfter}\r\n`;
  return (
    `HTTP/1.1 ${err.status} ${STATUS_CODES[err.status] ?? ''}\r\ncontent-type: application/json\r\n` +
    `cache-control: no-store\r\n${retry}content-length: ${Buffer.byteLength(body)}\r\nconnection: close\r\n\r\n${body}`
  );
}

/** Turns anything thrown into an LwError that is safe to show a client. */
export function toLwError(err: unknown): LwError {
  if (err instanceof LwError) return err;
  return new LwError('LW_ERR_INTERNAL', 'internal error');
}
