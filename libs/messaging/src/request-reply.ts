import {
  applyDecorators,
  type ArgumentMetadata,
  type ArgumentsHost,
  Catch,
  Logger,
  type PipeTransform,
  UsePipes,
  type RpcExceptionFilter,
} from '@nestjs/common';
import { type ClientProxy, MessagePattern, type NatsOptions, Transport } from '@nestjs/microservices';
import { lastValueFrom, type Observable, throwError, timeout, TimeoutError } from 'rxjs';
import { ZodError, type z } from 'zod';
import { ErrorReply, type ReplyOf, type RequestDefinition, type RequestOf } from '@threadline/contracts';
import { BaseConfig, DomainError, formatIssues, isErrorCode, ValidationError } from '@threadline/platform';
import { JetStreamEventContext } from './jetstream-events.server';
import { natsConnectOptions, type NatsSettings } from './nats-connection';

type AnyRequest = RequestDefinition<z.ZodType, z.ZodType>;

/**
 * The subject prefix of this process (`NATS_SUBJECT_PREFIX`, default `threadline`), read when handler
 * decorators are evaluated; each test run and each deployment sets its own to stay isolated.
 */
export function subjectPrefix(): string {
  return BaseConfig.shape.NATS_SUBJECT_PREFIX.parse(process.env['NATS_SUBJECT_PREFIX']);
}

/**
 * Options for NestJS's core-NATS transport serving commands and queries with a queue group.
 * On close it unsubscribes, then waits `gracePeriodMs` (default 2000 ms; NestJS's own default is
 * 10 s, which every shutdown would pay in full) for handlers in flight before closing the connection.
 */
export function requestTransportOptions(
  settings: NatsSettings,
  queue: string,
  opts: { gracePeriodMs?: number } = {},
): NatsOptions {
  return {
    transport: Transport.NATS,
    options: {
      ...natsConnectOptions(settings, queue),
      queue,
      gracefulShutdown: true,
      gracePeriod: opts.gracePeriodMs ?? 2000,
    },
  };
}

/**
 * Parses a request payload with its contract; a bad payload becomes a `REQUEST.INVALID` error reply.
 * Only the `@Payload()` argument is parsed: a method's pipes also run on `@Ctx()`, which is no payload.
 */
export class ZodRequestPipe implements PipeTransform {
  constructor(private readonly schema: z.ZodType) {}

  transform(value: unknown, metadata?: ArgumentMetadata): unknown {
    // NestJS names the RPC payload's parameter type `body` (RpcParamtype.PAYLOAD = RouteParamtypes.BODY).
    if (metadata && metadata.type !== 'body') return value;
    const result = this.schema.safeParse(value);
    if (!result.success)
      throw new ValidationError('Invalid request payload', formatIssues(result.error.issues));
    return result.data;
  }
}

/**
 * Marks a controller method as the handler of a command or query: subscribes to its subject
 * (in the service's queue group) and parses the payload (the `@Payload()` argument, or the first
 * argument of a method without parameter decorators) with the contract's schema.
 */
export const RequestHandler = (definition: AnyRequest) =>
  applyDecorators(
    MessagePattern(definition.subject(subjectPrefix())),
    UsePipes(new ZodRequestPipe(definition.schema)),
  );

/** Turns anything thrown into a typed error reply; unknown errors are logged and become `INTERNAL`. */
export function toErrorReply(error: unknown, logger?: Logger): ErrorReply {
  if (error instanceof DomainError) {
    return { code: error.code, message: error.message, ...(error.details ? { details: error.details } : {}) };
  }
  if (error instanceof ZodError) {
    return {
      code: 'REQUEST.INVALID',
      message: 'Invalid request',
      details: { issues: formatIssues(error.issues) },
    };
  }
  logger?.error(error instanceof Error ? (error.stack ?? error.message) : String(error));
  return { code: 'INTERNAL', message: 'Internal error' };
}

/**
 * Replies to a failed command or query with `{ code, message, details }`: codes cross processes, classes do not.
 * A failed JetStream event handler (context {@link JetStreamEventContext}) gets its original error back:
 * events have no reply, and the consumer needs the real error for its retry log and dead letter.
 */
@Catch()
export class RpcErrorReplyFilter implements RpcExceptionFilter<unknown> {
  private readonly logger = new Logger('RpcErrorReplyFilter');

  catch(exception: unknown, host?: ArgumentsHost): Observable<never> {
    if (host?.getType() === 'rpc' && host.switchToRpc().getContext() instanceof JetStreamEventContext) {
      return throwError(() => exception);
    }
    return throwError(() => toErrorReply(exception, this.logger));
  }
}

/**
 * Sends commands and queries over core NATS request/reply and returns the parsed reply.
 * Throws a `DomainError` with the code the service replied with; `SERVICE.UNAVAILABLE` when no
 * service answered within `timeoutMs`; a `ValidationError` (`REQUEST.INVALID`, nothing sent) when
 * `payload` does not match the contract; `INTERNAL` when the reply does not match it.
 */
export class RequestClient {
  constructor(
    private readonly client: ClientProxy,
    private readonly prefix: string,
    private readonly timeoutMs: number,
  ) {}

  async request<D extends AnyRequest>(definition: D, payload: RequestOf<D>): Promise<ReplyOf<D>> {
    const parsed = definition.schema.safeParse(payload);
    if (!parsed.success) {
      throw new ValidationError(`Invalid ${definition.name} payload`, formatIssues(parsed.error.issues));
    }
    const body: unknown = parsed.data;
    let reply: unknown;
    try {
      reply = await lastValueFrom(
        this.client.send<unknown>(definition.subject(this.prefix), body).pipe(timeout(this.timeoutMs)),
      );
    } catch (error) {
      throw toDomainError(error, definition);
    }
    const parsedReply = definition.reply.safeParse(reply);
    if (!parsedReply.success) {
      // The service broke its contract: not the caller's fault, and not to be retried as if it were.
      throw new DomainError('INTERNAL', `${definition.name} replied with an invalid reply`, {
        issues: formatIssues(parsedReply.error.issues),
      });
    }
    return parsedReply.data as ReplyOf<D>;
  }
}

function toDomainError(error: unknown, definition: AnyRequest): DomainError {
  if (error instanceof TimeoutError) {
    return new DomainError('SERVICE.UNAVAILABLE', `No answer to ${definition.name} in time`);
  }
  const reply = ErrorReply.safeParse(error);
  if (reply.success && isErrorCode(reply.data.code)) {
    return new DomainError(reply.data.code, reply.data.message, reply.data.details);
  }
  return new DomainError(
    'SERVICE.UNAVAILABLE',
    `${definition.name} failed: ${error instanceof Error ? error.message : 'unknown error'}`,
  );
}
