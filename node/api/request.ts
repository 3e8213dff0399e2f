/**
 * Turning a raw HTTP request into a validated API request: the path is split and checked (no
 * `..`, empty or over-long segments, NUL or control characters), the method normalised (LIST,
 * `?list=true`), and the body read as JSON with a size limit. Every problem becomes a 4xx.
 */
import type { IncomingMessage } from 'node:http';
import type { Http2ServerRequest } from 'node:http2';
import { LwError } from '../../shared/errors';
import type { EntryAdmission } from '../barrier/secure-storage';

/** A request on either the HTTP/1.1 or the HTTP/2 compat API. */
export type AnyRequest = IncomingMessage | Http2ServerRequest;

/** The longest path segment accepted (bytes, decoded). */
const MAX_SEGMENT_BYTES = 512;
/** The longest whole path accepted (characters, raw). */
const MAX_PATH_CHARS = 4096;

/** Vault operations, derived from the HTTP method. */
export type Operation = 'read' | 'list' | 'write' | 'patch' | 'delete' | 'head';

/** A parsed API request. */
export interface ApiRequest {
  raw: AnyRequest;
  method: string;
  operation: Operation | null;
  /** The path after `/v1/`, decoded, without leading/trailing slash. */
  path: string;
  /** True when the raw path ended in `/` (directory-style, as in LIST secret/metadata/). */
  trailingSlash: boolean;
  query: URLSearchParams;
  /** The raw URL (path and query) as received, for redirects and forwarding. */
  url: string;
}

const METHOD_OPS: Record<string, Operation> = {
  GET: 'read',
  HEAD: 'head',
  LIST: 'list',
  POST: 'write',
  PUT: 'write',
  PATCH: 'patch',
  DELETE: 'delete',
};

/** Parses and validates the request line. Throws LwError 400/404. */
export function parseRequest(raw: AnyRequest): ApiRequest {
  const url = raw.url ?? '/';
  if (url.length > MAX_PATH_CHARS) throw new LwError('LW_ERR_BAD_REQUEST', 'request path is too long');
  const q = url.indexOf('?');
  const rawPath = q === -1 ? url : url.slice(0, q);
  const query = new URLSearchParams(q === -1 ? '' : url.slice(q + 1));
  if (!rawPath.startsWith('/v1/')) throw new LwError('LW_ERR_NOT_FOUND', 'unsupported path');
  const rest = rawPath.slice(4);
  const trailingSlash = rest.endsWith('/');
  const trimmed = trailingSlash ? rest.slice(0, -1) : rest;
  const segments = trimmed === '' ? [] : trimmed.split('/');
  const decoded = segments.map(decodeSegment);
  const method = (raw.method ?? 'GET').toUpperCase();
  let operation = METHOD_OPS[method] ?? null;
  if (operation === 'read' && isTrue(query.get('list'))) operation = 'list';
  return { raw, method, operation, path: decoded.join('/'), trailingSlash, query, url };
}

function decodeSegment(seg: string): string {
  if (seg === '') throw new LwError('LW_ERR_BAD_REQUEST', 'request path has an empty segment');
  let s: string;
  try {
    s = decodeURIComponent(seg);
  } catch {
    throw new LwError('LW_ERR_BAD_REQUEST', 'request path has an invalid percent-encoding');
  }
  if (s === '.' || s === '..')
    throw new LwError('LW_ERR_BAD_REQUEST', 'request path may not contain . or ..');
  if (/[\x00-\x1f\x7f/\\]/.test(s))
    throw new LwError('LW_ERR_BAD_REQUEST', 'request path has an invalid character');
  if (Buffer.byteLength(s) > MAX_SEGMENT_BYTES) {
    throw new LwError('LW_ERR_BAD_REQUEST', `request path segment is longer than ${MAX_SEGMENT_BYTES} bytes`);
  }
  return s;
}

/** Vault's boolean query parsing. */
export function isTrue(v: string | null): boolean {
  return v === 'true' || v === '1' || v === 't' || v === 'T' || v === 'TRUE' || v === 'True';
}

/** Content types we parse as JSON. curl's default form type is accepted, as Vault does. */
function acceptableContentType(ct: string | undefined): boolean {
  if (!ct) return true;
  const base = (ct.split(';')[0] ?? '').trim().toLowerCase();
  return (
    base === '' ||
    base === 'application/json' ||
    base.endsWith('+json') ||
    base === 'application/x-www-form-urlencoded' ||
    base === 'text/plain'
  );
}

/**
 * A body whose length is not declared: chunked on HTTP/1.1 (without either header there is no
 * body), any body without content-length on HTTP/2.
 */
function unknownLength(req: AnyRequest): boolean {
  if (req.headers['content-length'] !== undefined) return false;
  return req.headers['transfer-encoding'] !== undefined || req.httpVersionMajor >= 2;
}

/** Most nesting accepted in a JSON body; deeper bodies are refused before parsing. */
const MAX_JSON_DEPTH = 64;

/**
 * Reads the whole body (bounded by `limit` bytes) and parses it as a JSON object. An empty body
 * is `{}`. Throws 413 over the limit, 415 for a non-JSON content type, 400 for malformed JSON.
 * With a `budget`, the body's size is admitted against it before a byte is read (a body of
 * unknown length as `limit`, the rest given back once it is read): a large write costs memory
 * as a large read does, several times its size until it is stored.
 */
export async function readJsonBody(
  req: AnyRequest,
  limit: number,
  budget?: EntryAdmission,
): Promise<Record<string, unknown>> {
  if (!acceptableContentType(req.headers['content-type'])) {
    req.resume();
    throw new LwError('LW_ERR_UNSUPPORTED_MEDIA_TYPE', 'unsupported content type: send application/json');
  }
  const declared = Number(req.headers['content-length'] ?? 0);
  if (declared > limit) {
    req.resume();
    throw new LwError('LW_ERR_PAYLOAD_TOO_LARGE', 'request body is too large');
  }
  const admitted = budget ? (unknownLength(req) ? limit : declared) : 0;
  if (budget && admitted > 0) await budget.admit(admitted);
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size > limit) throw new LwError('LW_ERR_PAYLOAD_TOO_LARGE', 'request body is too large');
    chunks.push(chunk);
  }
  if (budget && size < admitted) budget.giveBack(admitted - size);
  if (size === 0) return {};
  const text = Buffer.concat(chunks, size).toString('utf8');
  if (tooDeep(text)) throw new LwError('LW_ERR_BAD_REQUEST', 'request body is nested too deeply');
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    throw new LwError('LW_ERR_BAD_REQUEST', 'failed to parse JSON input');
  }
  if (parsed === null || typeof parsed !== 'object' || Array.isArray(parsed)) {
    throw new LwError('LW_ERR_BAD_REQUEST', 'request body must be a JSON object');
  }
  return parsed as Record<string, unknown>;
}

/** A cheap scan for bracket depth, so a pathological body cannot exhaust the parser's stack. */
function tooDeep(text: string): boolean {
  let depth = 0;
  let inString = false;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (inString) {
      if (c === 92)
        i++; // backslash: skip the escaped character
      else if (c === 34) inString = false;
    } else if (c === 34) inString = true;
    else if (c === 123 || c === 91) {
      if (++depth > MAX_JSON_DEPTH) return true;
    } else if (c === 125 || c === 93) depth--;
  }
  return false;
}
