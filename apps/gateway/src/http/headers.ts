import { randomUUID } from 'node:crypto';
import type { IncomingMessage } from 'node:http';
import { createParamDecorator, type ExecutionContext } from '@nestjs/common';
import { ApiHeader } from '@nestjs/swagger';
import type { SchemaObject } from '@nestjs/swagger/dist/interfaces/open-api-spec.interface';
import type { FastifyReply, FastifyRequest } from 'fastify';
import { z } from 'zod';
import { IdempotencyKeyHeader, IfMatchHeader } from '@threadline/contracts';
import { PROBLEM_CONTENT_TYPE, problemFor, requestInvalid } from './problem-details';

/** `X-Correlation-Id`: 1-128 characters safe in logs; echoed on every response, generated when absent. */
export const CorrelationIdHeader = z
  .string()
  .min(1)
  .max(128)
  .regex(/^[A-Za-z0-9_\-.:@/]+$/, 'only letters, digits and _ - . : @ /');

export const CORRELATION_HEADER = 'x-correlation-id';
export const POSITION_HEADER = 'x-threadline-position';

/**
 * Parses one request header with its zod schema. `raw` is what Node gives (`undefined` when absent;
 * repeated headers of most kinds arrive joined by `, `, a few as arrays, which are rejected).
 * Returns `undefined` for an absent header. Throws `ValidationError` (400) naming the header.
 */
export function parseHeader<S extends z.ZodType>(
  name: string,
  schema: S,
  raw: string | string[] | undefined,
): z.output<S> | undefined {
  if (raw === undefined) return undefined;
  const result = schema.safeParse(raw);
  if (result.success) return result.data;
  throw requestInvalid('header', result.error.issues, [name.toLowerCase()]);
}

/**
 * `If-Match` as an expected stream version: `"3"`, `3` and `W/"3"` all give 3; absent gives
 * `undefined`. Throws `ValidationError` (400) for anything else (`*`, lists, non-numbers).
 */
export const parseIfMatch = (raw: string | string[] | undefined): number | undefined =>
  parseHeader('If-Match', IfMatchHeader, raw);

/** The OpenAPI schema of a header, derived from the same zod schema that parses it. */
function headerSchema(schema: z.ZodType): SchemaObject {
  const { $schema: _ignored, ...json } = z.toJSONSchema(schema, { io: 'input', target: 'openapi-3.0' });
  return json as SchemaObject;
}

const HeaderParam = createParamDecorator(
  (spec: { name: string; schema: z.ZodType }, ctx: ExecutionContext) => {
    const request = ctx.switchToHttp().getRequest<FastifyRequest>();
    return parseHeader(spec.name, spec.schema, request.headers[spec.name.toLowerCase()]);
  },
);

/**
 * Parameter decorator: the header `name` parsed with `schema` (`undefined` when absent; 400 when
 * invalid, before the handler runs), documented in OpenAPI from the same schema.
 */
export function ZodHeader(name: string, schema: z.ZodType, description: string): ParameterDecorator {
  const param = HeaderParam({ name, schema });
  return (target, key, index) => {
    param(target, key, index);
    const descriptor = key === undefined ? undefined : Object.getOwnPropertyDescriptor(target, key);
    if (key !== undefined && descriptor) {
      ApiHeader({ name, required: false, description, schema: headerSchema(schema) })(
        target,
        key,
        descriptor,
      );
    }
  };
}

/** What a write takes from the request besides its body: `Idempotency-Key` and the correlation id. */
export interface WriteMeta {
  idempotencyKey?: string;
  correlationId: string;
}

const WriteMetaParam = createParamDecorator((_data: unknown, ctx: ExecutionContext): WriteMeta => {
  const request = ctx.switchToHttp().getRequest<FastifyRequest>();
  const idempotencyKey = parseHeader(
    'Idempotency-Key',
    IdempotencyKeyHeader,
    request.headers['idempotency-key'],
  );
  return {
    correlationId: correlationIdOf(request),
    ...(idempotencyKey !== undefined ? { idempotencyKey } : {}),
  };
});

/**
 * Parameter decorator of every write: {@link WriteMeta} (the optional `Idempotency-Key`, 1-200
 * characters, 400 when invalid; a retry with the same key gets the first answer) and the
 * request's correlation id. Documents `Idempotency-Key` in OpenAPI.
 */
export function WriteContext(): ParameterDecorator {
  const param = WriteMetaParam();
  return (target, key, index) => {
    param(target, key, index);
    const descriptor = key === undefined ? undefined : Object.getOwnPropertyDescriptor(target, key);
    if (key !== undefined && descriptor) {
      ApiHeader({
        name: 'Idempotency-Key',
        required: false,
        description: 'A retried write with the same key returns the first answer and changes nothing',
        schema: headerSchema(IdempotencyKeyHeader),
      })(target, key, descriptor);
    }
  };
}

/**
 * Fastify's `genReqId`: the request id is the correlation id, so every log line of a request carries
 * it. A valid `X-Correlation-Id` is taken as is; otherwise (absent or invalid) a new UUID.
 */
export function requestIdOf(request: IncomingMessage): string {
  const raw = request.headers[CORRELATION_HEADER];
  if (raw === undefined) return randomUUID(); // the common case: no zod error built for nothing
  const parsed = CorrelationIdHeader.safeParse(raw);
  return parsed.success ? parsed.data : randomUUID();
}

/** The correlation id of a request (its Fastify request id, see {@link requestIdOf}). */
export function correlationIdOf(request: FastifyRequest): string {
  return request.id;
}

/**
 * Fastify `onRequest` hook: echoes the correlation id (the request id, which the access log writes)
 * in `X-Correlation-Id` on every response. A given but invalid `X-Correlation-Id` is answered at once
 * with a 400 problem (under a fresh id).
 */
export function correlationIdHook(request: FastifyRequest, reply: FastifyReply, done: () => void): void {
  const raw = request.headers[CORRELATION_HEADER];
  const parsed = raw === undefined ? undefined : CorrelationIdHeader.safeParse(raw);
  void reply.header(CORRELATION_HEADER, request.id);
  if (parsed && !parsed.success) {
    const { body } = problemFor(requestInvalid('header', parsed.error.issues, [CORRELATION_HEADER]), {
      hadIfMatch: false,
      instance: request.url.split('?')[0] ?? request.url,
    });
    void reply.status(400).header('content-type', PROBLEM_CONTENT_TYPE).send(body);
    return;
  }
  done();
}
