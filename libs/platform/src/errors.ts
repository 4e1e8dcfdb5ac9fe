/**
 * Every error code a client can see. Codes are stable strings (`AREA.REASON`); they travel in NATS
 * error replies because `instanceof` does not cross processes (STYLE.md, "Errors").
 */
export const ErrorCodes = [
  'REQUEST.INVALID',
  'REQUEST.UNAUTHORIZED',
  'REQUEST.FORBIDDEN',
  'REQUEST.RATE_LIMITED',
  'REQUEST.TOO_LARGE',
  'REQUEST.UNSUPPORTED_MEDIA_TYPE',
  'ROUTE.NOT_FOUND',
  'SESSION.NOT_FOUND',
  'SESSION.ALREADY_EXISTS',
  'SESSION.ALREADY_ENDED',
  'SESSION.VERSION_MISMATCH',
  'SESSION.LIMIT_REACHED',
  'TURN.NOT_FOUND',
  'TURN.ALREADY_EXISTS',
  'TURN.NOT_OPEN',
  'AGENT.BACKEND_FAILED',
  'STREAM.VERSION_CONFLICT',
  'SERVICE.UNAVAILABLE',
  'INTERNAL',
] as const;
export type ErrorCode = (typeof ErrorCodes)[number];

export const isErrorCode = (code: string): code is ErrorCode =>
  (ErrorCodes as readonly string[]).includes(code);

/** Base of every error domain code throws; never an HttpException. */
export class DomainError extends Error {
  constructor(
    readonly code: ErrorCode,
    message: string,
    readonly details?: Record<string, unknown>,
  ) {
    super(message);
    this.name = new.target.name;
  }
}

/** Input failed validation; `details.issues` holds the zod issues (`path`, `message`). */
export class ValidationError extends DomainError {
  constructor(message: string, issues: { path: string; message: string }[]) {
    super('REQUEST.INVALID', message, { issues });
  }
}

export class NotFoundError extends DomainError {}

/**
 * The stream's version is not the expected one: someone else appended first.
 * `details`: `{ streamId, expected, actual }` (actual is null for a stream that does not exist).
 */
export class StreamVersionConflictError extends DomainError {
  constructor(streamId: string, expected: string | number, actual: number | null) {
    super(
      'STREAM.VERSION_CONFLICT',
      `Stream ${streamId} is at version ${actual ?? 'none'}, expected ${expected}`,
      {
        streamId,
        expected,
        actual,
      },
    );
  }
}

/**
 * HTTP status of each code, in one exhaustive switch (RFC 9110 semantics):
 * 400 bad input, 401 no identity, 403 a role that may not use the route, 429 over the rate limit,
 * 404 unknown (also for other users' data, ARCHITECTURE rule 9),
 * 409 state conflict, 412 failed `If-Match`, 502 the agent backend of `/query` failed,
 * 503 a service did not answer.
 */
export function httpStatusOf(code: ErrorCode): number {
  switch (code) {
    case 'REQUEST.INVALID':
      return 400;
    case 'REQUEST.UNAUTHORIZED':
      return 401;
    case 'REQUEST.FORBIDDEN':
      return 403;
    case 'REQUEST.RATE_LIMITED':
      return 429;
    case 'REQUEST.TOO_LARGE':
      return 413;
    case 'REQUEST.UNSUPPORTED_MEDIA_TYPE':
      return 415;
    case 'ROUTE.NOT_FOUND':
      return 404;
    case 'SESSION.NOT_FOUND':
    case 'TURN.NOT_FOUND':
      return 404;
    case 'SESSION.ALREADY_EXISTS':
    case 'SESSION.ALREADY_ENDED':
    case 'SESSION.LIMIT_REACHED':
    case 'TURN.ALREADY_EXISTS':
    case 'TURN.NOT_OPEN':
    case 'STREAM.VERSION_CONFLICT':
      return 409;
    case 'SESSION.VERSION_MISMATCH':
      return 412;
    case 'AGENT.BACKEND_FAILED':
      return 502;
    case 'SERVICE.UNAVAILABLE':
      return 503;
    case 'INTERNAL':
      return 500;
    default: {
      const unreachable: never = code;
      return unreachable;
    }
  }
}

/** Turns zod issues into `{ path, message }` pairs with dotted paths (`metadata.key`). */
export function formatIssues(issues: readonly { path: readonly PropertyKey[]; message: string }[]) {
  return issues.map((i) => ({ path: i.path.map(String).join('.'), message: i.message }));
}
