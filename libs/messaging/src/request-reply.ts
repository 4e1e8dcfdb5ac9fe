import { applyDecorators, Catch, Logger, type PipeTransform, UsePipes, type RpcExceptionFilter } from '@nestjs/common';
import { type ClientProxy, MessagePattern, type NatsOptions, Transport } from '@nestjs/microservices';
import { lastValueFrom, type Observable, throwError, timeout, TimeoutError } from 'rxjs';
import { ZodError, type z } from 'zod';
import { ErrorReply, type ReplyOf, type RequestDefinition, type RequestOf } from '@threadline/contracts';
import { BaseConfig, DomainError, formatIssues, isErrorCode, ValidationError } from '@threadline/platform';
import { natsConnectOptions, type NatsSettings } from './nats-connection';

type AnyRequest = RequestDefinition<z.ZodType, z.ZodType>;

/**
 * The subject prefix of this process (`NATS_SUBJECT_PREFIX`, default `threadline`), read when handler
 * decorators are evaluated; each test run and each deployment sets its own to stay isolated.
 */
export function subjectPrefix(): string {
  return BaseConfig.shape.NATS_SUBJECT_PREFIX.parse(process.env['NATS_SUBJECT_PREFIX']);
}

/** Options for NestJS's core-NATS transport serving commands and queries with a queue group. */
export function requestTransportOptions(settings: NatsSettings, queue: string): NatsOptions {
  return {
    transport: Transport.NATS,
    options: { ...natsConnectOptions(settings, queue), queue, gracefulShutdown: true },
  };
}

/** Parses a request payload with its contract; a bad payload becomes a `REQUEST.INVALID` error reply. */
export class ZodRequestPipe implements PipeTransform {
  constructor(private readonly schema: z.ZodType) {}

  transform(value: unknown): unknown {
    const result = this.schema.safeParse(value);
    if (!result.success) throw new ValidationError('Invalid request payload', formatIssues(result.error.issues));
    return result.data;
  }
}

/**
 * Marks a controller method as the handler of a command or query: subscribes to its subject
 * (in the service's queue group) and parses the payload with the contract's schema.
 */
export const RequestHandler = (definition: AnyRequest) =>
  applyDecorators(MessagePattern(definition.subject(subjectPrefix())), UsePipes(new ZodRequestPipe(definition.schema)));

/** Turns anything thrown into a typed error reply; unknown errors are logged and become `INTERNAL`. */
export function toErrorReply(error: unknown, logger?: Logger): ErrorReply {
  if (error instanceof DomainError) {
    return { code: error.code, message: error.message, ...(error.details ? { details: error.details } : {}) };
  }
  if (error instanceof ZodError) {
    return { code: 'REQUEST.INVALID', message: 'Invalid request', details: { issues: formatIssues(error.issues) } };
  }
  logger?.error(error instanceof Error ? (error.stack ?? error.message) : String(error));
  return { code: 'INTERNAL', message: 'Internal error' };
}

/** Replies to a failed command or query with `{ code, message, details }`: codes cross processes, classes do not. */
@Catch()
export class RpcErrorReplyFilter implements RpcExceptionFilter<unknown> {
  private readonly logger = new Logger('RpcErrorReplyFilter');

  catch(exception: unknown): Observable<never> {
    return throwError(() => toErrorReply(exception, this.logger));
  }
}

/**
 * Sends commands and queries over core NATS request/reply and returns the parsed reply.
 * Throws a `DomainError` with the code the service replied with; `SERVICE.UNAVAILABLE` when no
 * service answered within `timeoutMs`.
 */
export class RequestClient {
  constructor(
    private readonly client: ClientProxy,
    private readonly prefix: string,
    private readonly timeoutMs: number,
  ) {}

  async request<D extends AnyRequest>(definition: D, payload: RequestOf<D>): Promise<ReplyOf<D>> {
    const body: unknown = definition.schema.parse(payload);
    let reply: unknown;
    try {
      reply = await lastValueFrom(
        this.client.send<unknown>(definition.subject(this.prefix), body).pipe(timeout(this.timeoutMs)),
      );
    } catch (error) {
      throw toDomainError(error, definition);
    }
    return definition.reply.parse(reply) as ReplyOf<D>;
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
  return new DomainError('SERVICE.UNAVAILABLE', `${definition.name} failed: ${error instanceof Error ? error.message : 'unknown error'}`);
}
