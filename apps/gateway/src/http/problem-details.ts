import { STATUS_CODES } from 'node:http';
import { HttpException } from '@nestjs/common';
import { z } from 'zod';
import { DomainError, type ErrorCode, httpStatusOf, ValidationError } from '@threadline/platform';

/** Media type of every error body (RFC 9457 section 3). */
export const PROBLEM_CONTENT_TYPE = 'application/problem+json';

/** Where a bad input was found, named as in OpenAPI's `in` (path, query, header) plus `body`. */
export type InputLocation = 'body' | 'path' | 'query' | 'header';

/** One bad field: dotted `path` inside its location (`metadata.color`, `title`, `if-match`). */
export const FieldError = z.object({
  path: z.string(),
  message: z.string(),
  in: z.enum(['body', 'path', 'query', 'header']).optional(),
});
export type FieldError = z.infer<typeof FieldError>;

/**
 * An RFC 9457 problem body. `type` is a URN naming the `code` (not dereferenceable by design),
 * `title` the HTTP reason phrase, `detail` a message safe for clients (never a stack, SQL or a secret),
 * `code` the stable DomainError code, `errors` each bad field for 400s.
 */
export const ProblemDetails = z.object({
  type: z.string().describe('urn:threadline:problem:<code>'),
  title: z.string(),
  status: z.number().int(),
  detail: z.string(),
  code: z.string().describe('Stable error code, e.g. SESSION.NOT_FOUND'),
  instance: z.string().optional().describe('Path of the request'),
  errors: z.array(FieldError).optional(),
});
export type ProblemDetails = z.infer<typeof ProblemDetails>;

/** What the mapping needs to know about the request. */
export interface ProblemContext {
  /** The request carried `If-Match`: a version conflict is then a failed precondition (412). */
  hadIfMatch: boolean;
  /** Request path, echoed as `instance`. */
  instance?: string;
}

/** A mapped error: the body to send and whether it was unexpected (to be logged with its stack). */
export interface Problem {
  body: ProblemDetails;
  unexpected: boolean;
}

const Issues = z.array(FieldError);

/** The parts of a zod issue the problem body uses (`keys` for `unrecognized_keys`). */
interface IssueLike {
  path: readonly PropertyKey[];
  message: string;
  code?: string;
  keys?: readonly string[];
}

/**
 * A 400 for bad input at `location`; each zod issue becomes one entry of the problem's `errors`
 * (path dotted, prefixed by `prefix`). An unknown field of a strict object is named by itself.
 */
export function requestInvalid(
  location: InputLocation,
  issues: readonly IssueLike[],
  prefix: readonly string[] = [],
): ValidationError {
  const noun = { body: 'request body', path: 'path parameters', query: 'query string', header: 'headers' }[
    location
  ];
  const pathOf = (parts: readonly PropertyKey[]) => [...prefix, ...parts.map(String)].join('.');
  const errors: FieldError[] = issues.flatMap((i) =>
    i.code === 'unrecognized_keys' && i.keys && i.keys.length > 0
      ? i.keys.map((key) => ({ path: pathOf([...i.path, key]), message: 'unknown field', in: location }))
      : [{ path: pathOf(i.path), message: i.message, in: location }],
  );
  return new ValidationError(`Invalid ${noun}`, errors);
}

function build(
  code: ErrorCode,
  status: number,
  detail: string,
  ctx: ProblemContext,
  errors?: FieldError[],
): ProblemDetails {
  return {
    type: `urn:threadline:problem:${code}`,
    title: STATUS_CODES[status] ?? 'Error',
    status,
    detail,
    code,
    ...(ctx.instance !== undefined ? { instance: ctx.instance } : {}),
    ...(errors && errors.length > 0 ? { errors } : {}),
  };
}

/** Code of a framework `HttpException` (unknown route, body too large, bad media type) by status. */
function codeOfStatus(status: number): ErrorCode | undefined {
  if (status === 404) return 'ROUTE.NOT_FOUND';
  if (status === 413) return 'REQUEST.TOO_LARGE';
  if (status === 415) return 'REQUEST.UNSUPPORTED_MEDIA_TYPE';
  if (status >= 400 && status < 500) return 'REQUEST.INVALID';
  return undefined;
}

/** Fastify's JSON body parser rejects malformed JSON with a `SyntaxError` carrying `statusCode: 400`. */
function isBodySyntaxError(error: unknown): boolean {
  return error instanceof SyntaxError && (error as SyntaxError & { statusCode?: unknown }).statusCode === 400;
}

/**
 * Maps anything thrown while serving a request to a problem body (the one mapping of the gateway):
 *
 * - `DomainError` -> `httpStatusOf(code)`, with the code; `STREAM.VERSION_CONFLICT` on a request with
 *   `If-Match` -> 412 (RFC 9110 section 13.1.1); `REQUEST.INVALID` lists `details.issues` as `errors`;
 * - framework `HttpException`s (unknown route 404, too-large body 413, unsupported media type 415,
 *   other 4xx 400-class) -> their status with a matching code;
 * - malformed JSON -> 400 `REQUEST.INVALID`;
 * - anything else -> 500 `INTERNAL` with a fixed detail and `unexpected: true` (log it; never send it).
 */
export function problemFor(error: unknown, ctx: ProblemContext): Problem {
  if (error instanceof DomainError) {
    const status =
      error.code === 'STREAM.VERSION_CONFLICT' && ctx.hadIfMatch ? 412 : httpStatusOf(error.code);
    if (error.code === 'INTERNAL') {
      return { body: build('INTERNAL', 500, 'Internal error', ctx), unexpected: true };
    }
    const issues = error.code === 'REQUEST.INVALID' ? Issues.safeParse(error.details?.['issues']) : undefined;
    return {
      body: build(error.code, status, error.message, ctx, issues?.success ? issues.data : undefined),
      unexpected: false,
    };
  }
  if (error instanceof HttpException) {
    const status = error.getStatus();
    const code = codeOfStatus(status);
    if (code !== undefined) return { body: build(code, status, error.message, ctx), unexpected: false };
  }
  if (isBodySyntaxError(error)) {
    return {
      body: build('REQUEST.INVALID', 400, 'The request body is not valid JSON', ctx),
      unexpected: false,
    };
  }
  return { body: build('INTERNAL', 500, 'Internal error', ctx), unexpected: true };
}
