/**
 * The one errors module. Every error a client or operator can see has a stable `code`
 * (matched by code, never by message) and the HTTP status it maps to. Messages are safe to
 * show: they never contain tokens, keys, secret values or advertisement contents.
 */

/** Stable error codes and the HTTP status each maps to. */
export const ERROR_CODES = {
  LW_ERR_BAD_REQUEST: 400,
  LW_ERR_ALREADY_INITIALIZED: 400,
  LW_ERR_CAS_MISMATCH: 400,
  LW_ERR_UNSUPPORTED: 400,
  LW_ERR_PERMISSION_DENIED: 403,
  LW_ERR_NOT_FOUND: 404,
  LW_ERR_METHOD_NOT_ALLOWED: 405,
  LW_ERR_REQUEST_TIMEOUT: 408,
  LW_ERR_PAYLOAD_TOO_LARGE: 413,
  LW_ERR_UNSUPPORTED_MEDIA_TYPE: 415,
  LW_ERR_HEADERS_TOO_LARGE: 431,
  LW_ERR_INTERNAL: 500,
  LW_ERR_UPSTREAM: 502,
  LW_ERR_SEALED: 503,
  LW_ERR_STORAGE_UNAVAILABLE: 503,
  LW_ERR_FENCED_WRITE: 503,
  LW_ERR_NO_LEADER: 503,
  LW_ERR_NOT_ACTIVE: 503,
  LW_ERR_DRAINING: 503,
  LW_ERR_OVERLOADED: 503,
  LW_ERR_OUTCOME_UNKNOWN: 503,
  LW_ERR_CONFIG: 500,
  LW_ERR_CORRUPT: 500,
} as const;

export type ErrorCode = keyof typeof ERROR_CODES;

/** An error with a stable code, an HTTP status and a client-safe message. */
export class LwError extends Error {
  readonly code: ErrorCode;
  readonly status: number;
  /** Seconds for a `Retry-After` header, when the condition is expected to pass. */
  readonly retryAfter: number | undefined;

  constructor(code: ErrorCode, message: string, opts: { cause?: unknown; retryAfter?: number } = {}) {
    super(message, opts.cause === undefined ? undefined : { cause: opts.cause });
    this.name = 'LwError';
    this.code = code;
    this.status = ERROR_CODES[code];
    this.retryAfter = opts.retryAfter;
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
