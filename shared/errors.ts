/**
 * The one errors module. Every error a client or operator can see has a stable `code`
 * (matched by code, never by message) and the HTTP status it maps to. Messages are safe to
 * show: they never contain tokens, keys, secret values or advertisement contents.
 */

/** What one code fixes, declared once in ERRORS. */
export interface ErrorSpec {
  /** The HTTP status every error with this code is answered with. */
  readonly status: number;
  /**
   * "Not served": the node refused the request before storing anything, so a gateway or standby
   * may send it again (to the next leader, or once storage is back) whatever its method. A node
   * marks such an answer with NOT_SERVED_HEADER, unless the same request had already stored part
   * of its work (then it answers LW_ERR_OUTCOME_UNKNOWN instead).
   */
  readonly notServed: boolean;
  /** Seconds for `Retry-After` when the error is created without one; none: no header by default. */
  readonly retryAfterS?: number;
}

/**
 * The catalogue: every stable code with its status, whether it means "not served" and its default
 * `Retry-After` (fastify's `lib/errors.js` keeps code and status together the same way).
 * docs/errors.md lists every code; test/unit/errors-catalogue.test.ts keeps the two in step.
 */
export const ERRORS = {
  LW_ERR_BAD_REQUEST: { status: 400, notServed: false },
  LW_ERR_ALREADY_INITIALIZED: { status: 400, notServed: false },
  LW_ERR_CAS_MISMATCH: { status: 400, notServed: false },
  LW_ERR_UNSUPPORTED: { status: 400, notServed: false },
  LW_ERR_PERMISSION_DENIED: { status: 403, notServed: false },
  LW_ERR_NOT_FOUND: { status: 404, notServed: false },
  LW_ERR_METHOD_NOT_ALLOWED: { status: 405, notServed: false },
  LW_ERR_REQUEST_TIMEOUT: { status: 408, notServed: false },
  LW_ERR_PAYLOAD_TOO_LARGE: { status: 413, notServed: false },
  LW_ERR_UNSUPPORTED_MEDIA_TYPE: { status: 415, notServed: false },
  LW_ERR_HEADERS_TOO_LARGE: { status: 431, notServed: false },
  LW_ERR_INTERNAL: { status: 500, notServed: false },
  LW_ERR_UPSTREAM: { status: 502, notServed: false },
  LW_ERR_SEALED: { status: 503, notServed: false },
  // Not served: a rejected storage call stored nothing (batches are all-or-nothing; a write that
  // may have been applied is LW_ERR_OUTCOME_UNKNOWN), so the request is held through a Redis failover.
  LW_ERR_STORAGE_UNAVAILABLE: { status: 503, notServed: true, retryAfterS: 1 },
  // Not served: the fenced write was refused by the store, so nothing of it was stored.
  LW_ERR_FENCED_WRITE: { status: 503, notServed: true },
  LW_ERR_NO_LEADER: { status: 503, notServed: false, retryAfterS: 1 },
  // Not served: a node that is not active refuses a forwarded request before reading storage.
  LW_ERR_NOT_ACTIVE: { status: 503, notServed: true, retryAfterS: 1 },
  // Not served: a draining node or gateway answers without handling the request.
  LW_ERR_DRAINING: { status: 503, notServed: true },
  LW_ERR_OVERLOADED: { status: 503, notServed: false },
  LW_ERR_OUTCOME_UNKNOWN: { status: 503, notServed: false, retryAfterS: 1 },
  LW_ERR_CONFIG: { status: 500, notServed: false },
  LW_ERR_CORRUPT: { status: 500, notServed: false },
} as const satisfies Record<string, ErrorSpec>;

export type ErrorCode = keyof typeof ERRORS;

/** Each code's HTTP status (ERRORS' `status`, kept for importers that need only that). */
export const ERROR_CODES = Object.freeze(
  Object.fromEntries(Object.entries(ERRORS).map(([code, spec]) => [code, spec.status])),
) as { readonly [C in ErrorCode]: (typeof ERRORS)[C]['status'] };

/** An error with a stable code, an HTTP status and a client-safe message. */
export class LwError extends Error {
  readonly code: ErrorCode;
  readonly status: number;
  /**
   * Seconds for a `Retry-After` header, when the condition is expected to pass: the one given,
   * else the code's default (ERRORS), else none.
   */
  readonly retryAfter: number | undefined;
  /** The code means "not served" (ERRORS): nothing was stored, so the request may be sent again. */
  readonly notServed: boolean;

  constructor(code: ErrorCode, message: string, opts: { cause?: unknown; retryAfter?: number } = {}) {
    super(message, opts.cause === undefined ? undefined : { cause: opts.cause });
    this.name = 'LwError';
    this.code = code;
    const spec: ErrorSpec = ERRORS[code];
    this.status = spec.status;
    this.notServed = spec.notServed;
    this.retryAfter = opts.retryAfter ?? spec.retryAfterS;
  }
}

/** True when `err` is an LwError with the given code. */
export function isLwError(err: unknown, code?: ErrorCode): err is LwError {
  return err instanceof LwError && (code === undefined || err.code === code);
}

/** Vault's fixed messages, which clients and scripts match on. */
export const MESSAGES = {
  permissionDenied: 'permission denied',
  noActiveNode: 'local node not active but active cluster node not found',
  casMismatch: 'check-and-set parameter did not match the current version',
  alreadyInitialized: 'Vault is already initialized',
  sealed: 'Vault is sealed',
  fencedWrite: 'lock has changed ownership before attempting write',
  storageUnavailable: 'storage is unavailable',
  loginRoot: 'auth methods cannot create root tokens',
  invalidWrappingToken: 'wrapping token is not valid or does not exist',
} as const;
