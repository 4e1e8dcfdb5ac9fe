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
import {
  type ClientProxy,
  type CustomStrategy,
  type MessageHandler,
  MessagePattern,
  ServerNats,
} from '@nestjs/microservices';
import {
  createInbox,
  ErrorCode as NatsErrorCode,
  Events as NatsEvents,
  headers as natsHeaders,
  type Msg,
  type MsgHdrs,
  type NatsConnection as NatsClientConnection,
  NatsError,
} from 'nats';
import { type Observable, throwError } from 'rxjs';
import { ZodError, z } from 'zod';
import {
  compiledSchema,
  ErrorReply,
  pingOf,
  type PingReply,
  type ReplyOf,
  type RequestDefinition,
  type RequestOf,
} from '@threadline/contracts';
import {
  BaseConfig,
  DomainError,
  formatIssues,
  contextOf,
  injectTrace,
  inSpan,
  isErrorCode,
  isUnavailableError,
  NATS_PAYLOAD_RESERVE_BYTES,
  secondsSince,
  SpanKind,
  traceparentOf,
  tracingEnabled,
  ValidationError,
} from '@threadline/platform';
import { requestTimerOf } from './messaging-metrics';
import { JetStreamEventContext } from './jetstream-events.server';
import { HandlerCache } from './handler-cache';
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
 * NestJS's core-NATS transport server, with each subject's handler looked up once ({@link HandlerCache}),
 * replies that NATS cannot carry (over the server's `max_payload`: NestJS's publish throws and the
 * caller would wait for its whole timeout) answered at once with a `REQUEST.TOO_LARGE` error reply,
 * the service's health ping (`pingOf(queue)`, answered here: an answer proves the transport serves;
 * with a `health` check it also carries the service's own Postgres state)
 * and the handling time of every request by subject (`nats_request_handling_duration_seconds`).
 */
class QueueGroupServer extends ServerNats {
  private readonly handlers = new HandlerCache((pattern) => super.getHandlerByPattern(pattern));
  private readonly replyLogger = new Logger('QueueGroupServer');

  constructor(
    options: ConstructorParameters<typeof ServerNats>[0],
    service: string,
    health?: () => Promise<unknown>,
  ) {
    super(options);
    const ping = async (): Promise<PingReply> => ({
      service,
      uptimeSeconds: process.uptime(),
      ...(health ? { postgres: await postgresState(health) } : {}),
    });
    this.addHandler(pingOf(service).subject(subjectPrefix()), ping as MessageHandler);
  }

  override getHandlerByPattern(pattern: string): MessageHandler | null {
    return this.handlers.handlerOf(pattern);
  }

  override getPublisher(
    natsMsg: Parameters<ServerNats['getPublisher']>[0],
    id: string,
    ctx: Parameters<ServerNats['getPublisher']>[2],
  ): (response: unknown) => unknown {
    // NestJS types the reply packet `any`; it is a NestReplyPacket.
    const publish = super.getPublisher(natsMsg, id, ctx) as (response: unknown) => unknown;
    const subject = String((natsMsg as { subject?: unknown }).subject);
    return (response: unknown) => {
      try {
        return publish(response);
      } catch (error) {
        if (!(error instanceof NatsError && error.code === NATS_MAX_PAYLOAD)) throw error;
        this.replyLogger.warn(`reply to ${subject} exceeds NATS max_payload: answered REQUEST.TOO_LARGE`);
        const err: ErrorReply = {
          code: 'REQUEST.TOO_LARGE',
          message: 'The answer is larger than NATS can carry (max_payload); ask for less (a smaller page)',
        };
        return publish({ err, isDisposed: true });
      }
    };
  }

  // Resolves once the handler answered and its reply was handed to the connection. With tracing on,
  // the handling is a SERVER span continuing the caller's trace (W3C `traceparent` in the headers).
  override async handleMessage(channel: string, natsMsg: Msg) {
    const start = performance.now();
    const handle = async () => (await super.handleMessage(channel, natsMsg)) as unknown;
    try {
      if (!tracingEnabled()) return await handle();
      const parent = contextOf(
        natsMsg.headers?.get('traceparent') || undefined,
        natsMsg.headers?.get('tracestate') || undefined,
      );
      return await inSpan(
        `process ${channel}`,
        {
          kind: SpanKind.SERVER,
          parent,
          attributes: { 'messaging.system': 'nats', 'messaging.destination.name': channel },
        },
        handle,
      );
    } finally {
      requestTimerOf(channel).observe(secondsSince(start));
    }
  }
}

/** Longest a service's own health check (its `SELECT 1`) may take before it counts as down, in ms. */
export const SERVICE_HEALTH_TIMEOUT_MS = 1500;

/** 'up' when `check` resolves within {@link SERVICE_HEALTH_TIMEOUT_MS}, else 'down'. */
async function postgresState(check: () => Promise<unknown>): Promise<'up' | 'down'> {
  let timer: NodeJS.Timeout | undefined;
  const timedOut = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error('timeout')), SERVICE_HEALTH_TIMEOUT_MS);
  });
  try {
    await Promise.race([check(), timedOut]);
    return 'up';
  } catch {
    return 'down';
  } finally {
    clearTimeout(timer);
  }
}

/**
 * NestJS's core-NATS transport serving commands and queries with a queue group, for
 * `connectMicroservice` / `createMicroservice`.
 * On close it unsubscribes, then waits `gracePeriodMs` (default 2000 ms; NestJS's own default is
 * 10 s, which every shutdown would pay in full) for handlers in flight before closing the connection.
 */
export function requestTransportOptions(
  settings: NatsSettings,
  queue: string,
  opts: { gracePeriodMs?: number; health?: () => Promise<unknown> } = {},
): CustomStrategy {
  return {
    strategy: new QueueGroupServer(
      {
        ...natsConnectOptions(settings, queue),
        queue,
        gracefulShutdown: true,
        gracePeriod: opts.gracePeriodMs ?? 2000,
      },
      queue,
      opts.health,
    ),
  };
}

/**
 * Parses a request payload with its contract, compiled ({@link compiledSchema}); a bad payload becomes
 * a `REQUEST.INVALID` error reply.
 * Only the `@Payload()` argument is parsed: a method's pipes also run on `@Ctx()`, which is no payload.
 */
export class ZodRequestPipe implements PipeTransform {
  private readonly schema: z.ZodType;

  constructor(schema: z.ZodType) {
    this.schema = compiledSchema(schema);
  }

  transform(value: unknown, metadata?: ArgumentMetadata): unknown {
    // NestJS names the RPC payload's parameter type `body` (RpcParamtype.PAYLOAD = RouteParamtypes.BODY).
    if (metadata && metadata.type !== 'body') return value;
    const result = this.schema.safeParse(value);
    if (!result.success)
      throw new ValidationError('Invalid request payload', formatIssues(result.error.issues));
    if (tracingEnabled()) stampTrace(result.data);
    return result.data;
  }
}

/**
 * Writes the active span (the request's SERVER span) into a command's `context.traceparent`, so each
 * event the command appends keeps it in its metadata (`eventMetadata`) and the trace goes on through
 * the relay and the consumers. Payloads without a `context` object are left as they are.
 */
function stampTrace(payload: unknown): void {
  if (typeof payload !== 'object' || payload === null || !('context' in payload)) return;
  const commandContext = payload.context;
  if (typeof commandContext !== 'object' || commandContext === null) return;
  const traceparent = traceparentOf();
  if (traceparent !== undefined) (commandContext as { traceparent?: string }).traceparent = traceparent;
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

/**
 * Turns anything thrown into a typed error reply: a backing server that is unavailable (Postgres down
 * or restarting, {@link isUnavailableError}) is `SERVICE.UNAVAILABLE` (logged as a warning: retrying
 * later may succeed); other unknown errors are logged (message and stack, with the request's
 * `correlationId` when known) and become `INTERNAL`.
 */
export function toErrorReply(error: unknown, logger?: Logger, correlationId?: string): ErrorReply {
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
  if (isUnavailableError(error)) {
    logger?.warn(`database unavailable: ${error instanceof Error ? error.message : String(error)}`);
    return { code: 'SERVICE.UNAVAILABLE', message: 'The database is unavailable; retry later' };
  }
  const message = error instanceof Error ? error.message : String(error);
  const stack = error instanceof Error ? error.stack : undefined;
  logger?.error(
    {
      msg: `request failed: ${message}`,
      ...(correlationId !== undefined ? { correlation_id: correlationId } : {}),
    },
    stack,
  );
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
    const data: unknown = host?.getType() === 'rpc' ? host.switchToRpc().getData() : undefined;
    return throwError(() => toErrorReply(exception, this.logger, correlationIdOf(data)));
  }
}

/** The `context.correlationId` of a command payload, if it has one. */
function correlationIdOf(payload: unknown): string | undefined {
  const parsed = CorrelatedPayload.safeParse(payload);
  return parsed.success ? parsed.data.context.correlationId : undefined;
}
const CorrelatedPayload = z.object({ context: z.object({ correlationId: z.string() }) });

/** What a NestJS NATS server replies (`@nestjs/microservices` wire format): a value or an error. */
interface NestReplyPacket {
  response?: unknown;
  err?: unknown;
  isDisposed?: boolean;
}

/** A request waiting for its reply. */
interface PendingRequest {
  definition: AnyRequest;
  resolve: (answer: NestReplyPacket) => void;
  reject: (error: DomainError) => void;
  timer: NodeJS.Timeout;
}

/** One connection's reply subscription (`<inbox>.*`) and the requests waiting on it, by id. */
interface ReplyInbox {
  nc: NatsClientConnection;
  inbox: string;
  pending: Map<string, PendingRequest>;
}

/**
 * Sends commands and queries over core NATS request/reply and returns the parsed reply.
 * Throws a `DomainError` with the code the service replied with (`REQUEST.INVALID` naming the fields
 * when `payload` does not match the contract: the service parses every payload with it, so the client
 * does not parse it a second time); `REQUEST.TOO_LARGE` (before sending) when the request, as a NATS
 * message, is larger than the server's `max_payload` (its INFO) less `NATS_PAYLOAD_RESERVE_BYTES`:
 * the event it appends and its reply, each a little larger than the request, must fit too;
 * `SERVICE.UNAVAILABLE` when no service answered within `timeoutMs`
 * (or none listens, or the connection closed before the answer); `INTERNAL` when the reply does not
 * match the contract (parsed with it compiled, {@link compiledSchema}).
 *
 * It speaks NestJS's NATS wire format (`{ pattern, data, id }` in JSON; the reply
 * `{ response | err, isDisposed, id }`), so the services are plain NestJS microservices, but it sends
 * with the `nats` connection under `client` directly: one subscription per connection, `<inbox>.*`,
 * receives every reply, and each request is one publish with the reply subject `<inbox>.<id>`. The
 * `nats` client's own `request()` does the same, but creates a `NatsError` (a stack trace) for every
 * reply that succeeds, plus a promise and a timer object per request (measured 0.3 s of the gateway's
 * 15 s of CPU in scenario 7); `ClientProxy.send` subscribes and unsubscribes a fresh inbox for every
 * request. A handler answers once (a value or a promise): a streamed reply gives its first value.
 */
export class RequestClient {
  private replies: ReplyInbox | undefined;
  private connecting: Promise<ReplyInbox> | undefined;
  private nextId = 0;

  constructor(
    private readonly client: ClientProxy,
    private readonly prefix: string,
    private readonly timeoutMs: number,
  ) {}

  async request<D extends AnyRequest>(definition: D, payload: RequestOf<D>): Promise<ReplyOf<D>> {
    if (!tracingEnabled()) return this.send(definition, payload, undefined);
    // A CLIENT span around the request; its context travels in the W3C `traceparent` header.
    const subject = definition.subject(this.prefix);
    return inSpan(
      `send ${subject}`,
      {
        kind: SpanKind.CLIENT,
        attributes: { 'messaging.system': 'nats', 'messaging.destination.name': subject },
      },
      () => {
        const h = natsHeaders();
        injectTrace((name, value) => h.set(name, value));
        return this.send(definition, payload, h);
      },
    );
  }

  private async send<D extends AnyRequest>(
    definition: D,
    payload: RequestOf<D>,
    hdrs: MsgHdrs | undefined,
  ): Promise<ReplyOf<D>> {
    const subject = definition.subject(this.prefix);
    this.nextId = (this.nextId + 1) % Number.MAX_SAFE_INTEGER;
    const id = String(this.nextId);
    const packet = Buffer.from(JSON.stringify({ pattern: subject, data: payload, id }));
    let replies: ReplyInbox;
    try {
      replies = this.replies && !this.replies.nc.isClosed() ? this.replies : await this.connect();
    } catch (error) {
      throw toDomainError(error, definition);
    }
    const maxPayload = replies.nc.info?.max_payload;
    if (maxPayload !== undefined && packet.length > maxPayload - NATS_PAYLOAD_RESERVE_BYTES) {
      throw new DomainError(
        'REQUEST.TOO_LARGE',
        `The request is too large to be carried: ${packet.length} bytes as a NATS message, at most ` +
          `${maxPayload - NATS_PAYLOAD_RESERVE_BYTES} (the server's max_payload of ${maxPayload} bytes, ` +
          `less ${NATS_PAYLOAD_RESERVE_BYTES} for the event and the reply it makes)`,
        { sizeBytes: packet.length, limitBytes: maxPayload - NATS_PAYLOAD_RESERVE_BYTES, maxPayload },
      );
    }
    const answer = await new Promise<NestReplyPacket>((resolve, reject) => {
      const timer = setTimeout(() => {
        replies.pending.delete(id);
        reject(new DomainError('SERVICE.UNAVAILABLE', `No answer to ${definition.name} in time`));
      }, this.timeoutMs);
      replies.pending.set(id, { definition, resolve, reject, timer });
      try {
        const reply = `${replies.inbox}.${id}`;
        replies.nc.publish(subject, packet, hdrs ? { reply, headers: hdrs } : { reply });
      } catch (error) {
        clearTimeout(timer);
        replies.pending.delete(id);
        reject(toDomainError(error, definition));
      }
    });
    if (answer.err !== undefined && answer.err !== null) throw toDomainError(answer.err, definition);
    const parsedReply = compiledSchema(definition.reply).safeParse(answer.response);
    if (!parsedReply.success) {
      // The service broke its contract: not the caller's fault, and not to be retried as if it were.
      throw new DomainError('INTERNAL', `${definition.name} replied with an invalid reply`, {
        issues: formatIssues(parsedReply.error.issues),
      });
    }
    return parsedReply.data as ReplyOf<D>;
  }

  /**
   * The `nats` connection of the NestJS client (connected once; again after it was closed) and its
   * reply subscription. Requests still waiting when that connection closes or is disconnected are
   * `SERVICE.UNAVAILABLE` at once.
   */
  private connect(): Promise<ReplyInbox> {
    this.connecting ??= (this.client.connect() as Promise<NatsClientConnection>).then(
      (nc) => {
        const replies: ReplyInbox = { nc, inbox: createInbox(), pending: new Map() };
        const from = replies.inbox.length + 1;
        nc.subscribe(`${replies.inbox}.*`, {
          callback: (error, msg) => settle(replies, msg.subject.slice(from), error ?? msg),
        });
        void nc.closed().then(() => {
          for (const id of [...replies.pending.keys()])
            settle(replies, id, NatsError.errorForCode(NatsErrorCode.ConnectionClosed));
        });
        // Core NATS keeps nothing for a disconnected subscriber: a reply sent while this connection is
        // down (a NATS restart) is lost, so the requests waiting now fail at once instead of at their
        // timeout. (One answered after the reconnect would have been kept: a retry costs less than 5 s.)
        void (async () => {
          for await (const status of nc.status()) {
            if (status.type !== NatsEvents.Disconnect) continue;
            for (const id of [...replies.pending.keys()])
              settle(replies, id, NatsError.errorForCode(NatsErrorCode.Disconnect));
          }
        })();
        this.replies = replies;
        this.connecting = undefined;
        return replies;
      },
      (error: unknown) => {
        this.connecting = undefined;
        throw error;
      },
    );
    return this.connecting;
  }
}

/**
 * Ends request `id` of `replies` (nothing when it is no longer waiting: answered late, after its
 * timeout) with its reply, or with the error of the subscription or of the connection. The server's
 * empty status-503 message on the reply subject means nobody listens on the request's subject.
 */
function settle(replies: ReplyInbox, id: string, outcome: NatsError | Msg): void {
  const request = replies.pending.get(id);
  if (!request) return;
  replies.pending.delete(id);
  clearTimeout(request.timer);
  if (outcome instanceof NatsError) return request.reject(toDomainError(outcome, request.definition));
  if (outcome.data.length === 0 && outcome.headers?.code === 503) {
    return request.reject(
      toDomainError(NatsError.errorForCode(NatsErrorCode.NoResponders), request.definition),
    );
  }
  try {
    request.resolve(outcome.json<NestReplyPacket>());
  } catch (error) {
    request.reject(toDomainError(error, request.definition));
  }
}

/** The `code` of the `NatsError` of a request nobody answered in time, and of one nobody listens to. */
const NATS_TIMEOUT: string = NatsErrorCode.Timeout;
const NATS_NO_RESPONDERS: string = NatsErrorCode.NoResponders;
const NATS_MAX_PAYLOAD: string = NatsErrorCode.MaxPayloadExceeded;

function toDomainError(error: unknown, definition: AnyRequest): DomainError {
  if (error instanceof NatsError && error.code === NATS_TIMEOUT) {
    return new DomainError('SERVICE.UNAVAILABLE', `No answer to ${definition.name} in time`);
  }
  if (error instanceof NatsError && error.code === NATS_NO_RESPONDERS) {
    return new DomainError('SERVICE.UNAVAILABLE', `No service answers ${definition.name}`);
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
