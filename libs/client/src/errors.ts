/** One bad field of a 400 problem: `path` is dotted (`agent_responses.0.model`), `in` where it was. */
export interface FieldError {
  path: string;
  message: string;
  in?: 'body' | 'path' | 'query' | 'header';
}

/** What {@link ThreadlineError} is built from (the constructor's argument). */
export interface ThreadlineErrorInit {
  status: number;
  code: string;
  detail: string;
  title?: string;
  type?: string;
  instance?: string;
  errors?: FieldError[];
  /** The whole problem body as the server sent it (extra members included); `undefined` when none. */
  body?: unknown;
  /** `Retry-After` of the answer, in ms; `undefined` when absent. */
  retryAfterMs?: number;
  /** The `X-Correlation-Id` the server answered with (the id of its logs for this request). */
  correlationId?: string;
  /** What failed underneath (the network error, the abort reason). */
  cause?: unknown;
}

/** Codes the SDK itself gives when no HTTP answer arrived (`status` 0). */
export const CLIENT_ERROR_CODES = {
  /** The connection failed, was refused or was cut before a whole answer arrived. */
  network: 'CLIENT.NETWORK',
  /** No answer within `timeoutMs`. */
  timeout: 'CLIENT.TIMEOUT',
  /** The caller's `AbortSignal` fired. */
  aborted: 'CLIENT.ABORTED',
  /** An answer arrived but its body was not the JSON the API documents. */
  invalidResponse: 'CLIENT.INVALID_RESPONSE',
} as const;

/**
 * Every error the SDK throws: an RFC 9457 problem answered by the API (`status` 400-599, `code` such
 * as `SESSION.NOT_FOUND`, `detail`, `errors` for a 400), or a failure before any answer (`status` 0,
 * `code` `CLIENT.NETWORK`, `CLIENT.TIMEOUT`, `CLIENT.ABORTED`; see {@link CLIENT_ERROR_CODES}).
 *
 * Check a family with `instanceof` on the subclass of its HTTP status ({@link NotFoundError} for
 * 404, {@link ConflictError} for 409, {@link PreconditionFailedError} for 412, ...), or with
 * {@link ThreadlineError.family} / {@link ThreadlineError.is} on the code: `error.family === 'SESSION'`,
 * `error.is('TURN.NOT_OPEN')`, `error.is('REQUEST.')` (a prefix ending in a dot).
 */
export class ThreadlineError extends Error {
  /** HTTP status of the answer; 0 when none arrived. */
  readonly status: number;
  /** Stable code: `FAMILY.REASON` (`SESSION.NOT_FOUND`, `REQUEST.INVALID`, `CLIENT.TIMEOUT`, ...). */
  readonly code: string;
  /** What went wrong, for a human. */
  readonly detail: string;
  readonly title: string | undefined;
  readonly type: string | undefined;
  readonly instance: string | undefined;
  /** The bad fields of a 400 (`[]` when the problem names none). */
  readonly errors: FieldError[];
  /** The problem body as sent (extra members, e.g. the `turn_id` of a 502 from `/query`). */
  readonly body: unknown;
  /** `Retry-After` of the answer in ms (429, 503); `undefined` when absent. */
  readonly retryAfterMs: number | undefined;
  /** The `X-Correlation-Id` of the answer: quote it when asking the operator. */
  readonly correlationId: string | undefined;

  constructor(init: ThreadlineErrorInit) {
    super(`${init.code}: ${init.detail}`, init.cause === undefined ? undefined : { cause: init.cause });
    this.name = new.target.name;
    this.status = init.status;
    this.code = init.code;
    this.detail = init.detail;
    this.title = init.title;
    this.type = init.type;
    this.instance = init.instance;
    this.errors = init.errors ?? [];
    this.body = init.body;
    this.retryAfterMs = init.retryAfterMs;
    this.correlationId = init.correlationId;
  }

  /** The code's family: what comes before the first dot (`SESSION`, `TURN`, `REQUEST`, `CLIENT`, ...). */
  get family(): string {
    const dot = this.code.indexOf('.');
    return dot === -1 ? this.code : this.code.slice(0, dot);
  }

  /** True when `code` is this error's code, or, ending in a dot (`'SESSION.'`), a prefix of it. */
  is(code: string): boolean {
    return code.endsWith('.') ? this.code.startsWith(code) : this.code === code;
  }

  /** 404: unknown, deleted, or another user's (the API never says which). */
  isNotFound(): boolean {
    return this.status === 404;
  }

  /** 409: conflicts with the current state (already exists, already ended, turn not open, ...). */
  isConflict(): boolean {
    return this.status === 409;
  }

  /** 412: `If-Match` named a version that is no longer the current one. */
  isPreconditionFailed(): boolean {
    return this.status === 412;
  }

  /** 429: the key's or user's rate limit; see {@link retryAfterMs}. */
  isRateLimited(): boolean {
    return this.status === 429;
  }

  /** No HTTP answer arrived (network failure, timeout, abort). */
  isConnectionError(): boolean {
    return this.status === 0;
  }
}

/** 400: a bad body, parameter or header; {@link ThreadlineError.errors} names each bad field. */
export class BadRequestError extends ThreadlineError {}
/** 401: no credential, or an invalid, expired or revoked one. */
export class AuthenticationError extends ThreadlineError {}
/** 403: the credential's role may not use this route (e.g. a user token on an admin route). */
export class PermissionDeniedError extends ThreadlineError {}
/** 404: unknown or deleted (a session of another user is 404 too). */
export class NotFoundError extends ThreadlineError {}
/** 409: conflicts with the current state (`SESSION.ALREADY_EXISTS`, `SESSION.ALREADY_ENDED`, `TURN.NOT_OPEN`, ...). */
export class ConflictError extends ThreadlineError {}
/** 412: `If-Match` is stale (`SESSION.VERSION_MISMATCH`). */
export class PreconditionFailedError extends ThreadlineError {}
/** 413: the body is larger than the server accepts. */
export class PayloadTooLargeError extends ThreadlineError {}
/** 429: rate limited (`REQUEST.RATE_LIMITED`); {@link ThreadlineError.retryAfterMs} says when to come back. */
export class RateLimitError extends ThreadlineError {}
/** 502: the agent backend of `/query` failed; the turn is logged as failed (`body.turn_id`). */
export class AgentBackendError extends ThreadlineError {}
/** 503: a service did not answer in time (`SERVICE.UNAVAILABLE`). */
export class ServiceUnavailableError extends ThreadlineError {}
/** Other 5xx answers. */
export class InternalServerError extends ThreadlineError {}
/** No answer: the connection failed or was cut (`CLIENT.NETWORK`), or the caller aborted (`CLIENT.ABORTED`). */
export class ConnectionError extends ThreadlineError {}
/** No answer within the call's `timeoutMs` (`CLIENT.TIMEOUT`). */
export class TimeoutError extends ConnectionError {}

/** The subclass of {@link ThreadlineError} for an HTTP `status`. */
export function errorClassOf(status: number): typeof ThreadlineError {
  switch (status) {
    case 400:
      return BadRequestError;
    case 401:
      return AuthenticationError;
    case 403:
      return PermissionDeniedError;
    case 404:
      return NotFoundError;
    case 409:
      return ConflictError;
    case 412:
      return PreconditionFailedError;
    case 413:
      return PayloadTooLargeError;
    case 429:
      return RateLimitError;
    case 502:
      return AgentBackendError;
    case 503:
      return ServiceUnavailableError;
    default:
      return status >= 500 ? InternalServerError : ThreadlineError;
  }
}
