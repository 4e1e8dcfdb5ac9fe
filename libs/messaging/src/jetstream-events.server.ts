import { BaseRpcContext, EventPattern, type CustomTransportStrategy, Server } from '@nestjs/microservices';
import { applyDecorators } from '@nestjs/common';
import { HandlerCache } from './handler-cache';
import { countDeadLetter, countRedelivery, reportConsumers } from './messaging-metrics';
import {
  AckPolicy,
  DeliverPolicy,
  jetstream,
  jetstreamManager,
  type ConsumerMessages,
  type JsMsg,
} from '@nats-io/jetstream';
import { nanos, type NatsConnection } from '@nats-io/transport-node';
import { lastValueFrom } from 'rxjs';
import { EventEnvelope, type EventDefinition } from '@threadline/contracts';
import { contextOf, inSpan, isUnavailableError, SpanKind, tracingEnabled } from '@threadline/platform';
import { z } from 'zod';

/**
 * Where poison events go (implemented by `DeadLetters` of `@threadline/event-store`). `record` must be
 * idempotent per consumer and message (`eventId`, else `subject` + `streamSequence`): a message is
 * recorded again when it is redelivered after its record but before its `term`. It resolves to whether
 * the letter was new.
 */
export interface DeadLetterSink {
  record(letter: {
    consumer: string;
    subject: string;
    payload: string;
    error: string;
    attempts: number;
    eventId?: string | undefined;
    eventType?: string | undefined;
    streamId?: string | undefined;
    globalPosition?: number | undefined;
    streamSequence?: number | undefined;
  }): Promise<boolean>;
}

export interface JetStreamEventsOptions {
  /** The connected JetStream client's connection. */
  connection: NatsConnection;
  /** Events stream name and subject prefix (`NATS_STREAM`, `NATS_SUBJECT_PREFIX`). */
  stream: string;
  prefix: string;
  /** Durable consumer name base; one durable per followed stream type: `<durable>-<streamType>`. */
  durable: string;
  deadLetters: DeadLetterSink;
  /** Deliveries before an event is dead-lettered (default 5). */
  maxDeliver?: number;
  /** Redelivery delays, ms, by attempt (default 200, 1000, 5000, 15000); the last repeats. */
  backoffMs?: number[];
  /** Time a handler has before JetStream redelivers, ms (default 30000). */
  ackWaitMs?: number;
}

/**
 * The context a JetStream event handler gets (`@Ctx()`): the JetStream message, its subject and how many
 * times it has been delivered (1 on the first delivery).
 */
export class JetStreamEventContext extends BaseRpcContext<[JsMsg, string]> {
  constructor(msg: JsMsg, consumer: string) {
    super([msg, consumer]);
  }
  getMessage(): JsMsg {
    return this.args[0];
  }
  getSubject(): string {
    return this.args[0].subject;
  }
  getDeliveryCount(): number {
    return this.args[0].info.deliveryCount;
  }
  /** The durable consumer delivering it (`<durable>-<streamType>`). */
  getConsumer(): string {
    return this.args[1];
  }
}

const CATEGORY_PATTERN = (category: string) => `${category}:*`;

/** How a handler lets its consumer deliver; see {@link OnEvent} and {@link OnStream}. */
export interface EventHandlerOptions {
  /**
   * Messages of the consumer handled at the same time (default 1: one at a time, in order). A
   * consumer uses the smallest value of the handlers of its stream type. Above 1, handlers run
   * concurrently and may finish out of order: only for handlers that do not depend on delivery order,
   * such as `ProjectionRunner.handle`, which is gap-aware and commits concurrent calls together.
   */
  concurrency?: number;
}

/**
 * The `concurrency` of consumers that feed `ProjectionRunner`s: up to this many messages in flight, which
 * the runners commit together (group commit); the consumer's pull buffer holds as many.
 */
export const PROJECTION_CONCURRENCY = 256;

/** Handles one event type (latest version); the handler gets the parsed `EventEnvelope`. */
export const OnEvent = (definition: EventDefinition<string, z.ZodType>, options: EventHandlerOptions = {}) =>
  applyDecorators(EventPattern(definition.type, { category: definition.category, ...options }));

/**
 * Handles every event of a stream type, in stream order (projections need all of them), or, with
 * `concurrency` above 1, several at a time (see {@link EventHandlerOptions}).
 */
export const OnStream = (category: string, options: EventHandlerOptions = {}) =>
  applyDecorators(EventPattern(CATEGORY_PATTERN(category), { category, ...options }));

const HandlerExtras = z.object({
  category: z.string().optional(),
  concurrency: z.number().int().min(1).optional(),
});

/**
 * NestJS transport for events over JetStream (ARCHITECTURE rule 7). Why our own: NestJS's NATS
 * transport is core NATS (at-most-once), and `@nestjs-plugins/nestjs-nats-jetstream-transport`
 * terminates a message on any handler error, dropping events on transient failures.
 *
 * Per followed stream type: a durable pull consumer with explicit ack, messages handled one at a time
 * in order (or up to `concurrency` at a time when every handler of the stream type allows it, see
 * {@link EventHandlerOptions}); success acks; a failure naks with backoff until `maxDeliver`, then the
 * event is recorded as a dead letter and terminated; a message that is not a valid envelope is
 * dead-lettered at once. An event is never acked before its handlers succeeded or its dead letter was
 * recorded.
 */
export class JetStreamEventsServer extends Server implements CustomTransportStrategy {
  private readonly subscriptions: ConsumerMessages[] = [];
  private readonly handlers = new HandlerCache((pattern) => this.getHandlerByPattern(pattern));
  private readonly loops: Promise<void>[] = [];
  private readonly maxDeliver: number;
  private readonly backoffMs: number[];
  private closing = false;
  /** Handlers waiting for the database to come back (see {@link handleUntilAvailable}). */
  private waitingForDatabase = 0;
  private stopReporting: (() => void) | undefined;

  constructor(private readonly options: JetStreamEventsOptions) {
    super();
    this.maxDeliver = options.maxDeliver ?? 5;
    this.backoffMs = options.backoffMs ?? [200, 1000, 5000, 15000];
  }

  listen(callback: (...optionalParams: unknown[]) => unknown): void {
    this.start().then(
      () => callback(),
      (error: unknown) => callback(error),
    );
  }

  private async start(): Promise<void> {
    // Stream type -> messages handled at once: the smallest concurrency of its handlers.
    const categories = new Map<string, number>();
    for (const handler of this.messageHandlers.values()) {
      const extras = HandlerExtras.parse(handler.extras ?? {});
      if (extras.category === undefined) continue;
      const concurrency = extras.concurrency ?? 1;
      categories.set(extras.category, Math.min(categories.get(extras.category) ?? concurrency, concurrency));
    }
    const jsm = await jetstreamManager(this.options.connection);
    const js = jetstream(this.options.connection);
    for (const [category, concurrency] of categories) {
      const durable = `${this.options.durable}-${category}`;
      const config = {
        durable_name: durable,
        filter_subject: `${this.options.prefix}.evt.${category}.>`,
        ack_policy: AckPolicy.Explicit,
        deliver_policy: DeliverPolicy.All,
        ack_wait: nanos(this.options.ackWaitMs ?? 30_000),
        // We terminate at maxDeliver ourselves after recording the dead letter; the server's limit is a backstop.
        max_deliver: this.maxDeliver + 5,
      };
      try {
        await jsm.consumers.info(this.options.stream, durable);
      } catch {
        await jsm.consumers.add(this.options.stream, config);
      }
      const consumer = await js.consumers.get(this.options.stream, durable);
      const messages = await consumer.consume({ max_messages: Math.max(256, 2 * concurrency) });
      this.subscriptions.push(messages);
      this.loops.push(this.drain(durable, category, messages, concurrency));
    }
    this.stopReporting = reportConsumers(
      this.options.connection,
      this.options.stream,
      [...categories.keys()].map((category) => `${this.options.durable}-${category}`),
    );
  }

  // Handles the consumer's messages, `concurrency` at most at a time (one at a time, in order, when 1).
  private async drain(
    consumerName: string,
    category: string,
    messages: ConsumerMessages,
    concurrency: number,
  ): Promise<void> {
    const inFlight = new Set<Promise<void>>();
    for await (const msg of messages) {
      const done = this.process(consumerName, category, msg).finally(() => inFlight.delete(done));
      inFlight.add(done);
      if (inFlight.size >= concurrency) await Promise.race(inFlight);
    }
    await Promise.all(inFlight);
  }

  // Never rejects: one message must not end the loop (the consumer would silently stop).
  private async process(consumerName: string, category: string, msg: JsMsg): Promise<void> {
    try {
      await this.handleMessage(consumerName, category, msg);
    } catch (error) {
      this.logger.error(
        `${consumerName}: could not process ${msg.subject}: ${describe(error)}`,
        stackOf(error),
      );
      msg.nak(this.backoffMs[0] ?? 1000);
    }
  }

  private async handleMessage(consumerName: string, category: string, msg: JsMsg): Promise<void> {
    const payload = msg.string();
    const attempts = msg.info.deliveryCount;
    if (attempts > 1) countRedelivery(consumerName);
    let envelope: EventEnvelope;
    try {
      envelope = EventEnvelope.parse(JSON.parse(payload));
    } catch (error) {
      await this.deadLetter(consumerName, msg, payload, error, attempts, undefined);
      return;
    }
    if (!tracingEnabled()) return this.dispatch(consumerName, category, msg, payload, envelope);
    // A CONSUMER span continuing the event's trace (the relay's `traceparent` header, else the one
    // kept in the event's metadata).
    const parent = contextOf(
      msg.headers?.get('traceparent') || envelope.metadata.traceparent,
      msg.headers?.get('tracestate') || undefined,
    );
    return inSpan(
      `process ${envelope.eventType}`,
      {
        kind: SpanKind.CONSUMER,
        parent,
        attributes: {
          'messaging.system': 'nats',
          'messaging.destination.name': msg.subject,
          'messaging.consumer.group.name': consumerName,
          'messaging.message.id': envelope.eventId,
          'messaging.message.delivery_count': attempts,
          ...(envelope.metadata.correlationId !== undefined
            ? { 'threadline.correlation_id': envelope.metadata.correlationId }
            : {}),
        },
      },
      () => this.dispatch(consumerName, category, msg, payload, envelope),
    );
  }

  // Runs the handlers of a parsed event; acks on success, naks with backoff or dead-letters on failure.
  private async dispatch(
    consumerName: string,
    category: string,
    msg: JsMsg,
    payload: string,
    envelope: EventEnvelope,
  ): Promise<void> {
    const attempts = msg.info.deliveryCount;
    const handlers = [
      this.handlers.handlerOf(envelope.eventType),
      this.handlers.handlerOf(CATEGORY_PATTERN(category)),
    ].filter((h) => h !== null);
    try {
      const context = new JetStreamEventContext(msg, consumerName);
      await this.handleUntilAvailable(consumerName, msg, envelope, async () => {
        for (const handler of handlers) {
          await lastValueFrom(this.transformToObservable(await handler(envelope, context)), {
            defaultValue: undefined,
          });
        }
      });
      msg.ack();
    } catch (error) {
      if (isUnavailableError(error)) {
        // Closing while the database is down: JetStream redelivers it to whoever runs next.
        msg.nak(this.backoffMs[0] ?? 1000);
      } else if (attempts >= this.maxDeliver) {
        await this.deadLetter(consumerName, msg, payload, error, attempts, envelope);
      } else {
        const delay = this.backoffMs[Math.min(attempts - 1, this.backoffMs.length - 1)] ?? 1000;
        this.logger.warn?.({
          msg: `${consumerName}: ${envelope.eventType} ${envelope.eventId} failed (attempt ${attempts}), retry in ${delay} ms: ${describe(error)}`,
          ...logFieldsOf(envelope),
        });
        msg.nak(delay);
      }
    }
  }

  /**
   * Runs `handle`; while it fails because the database is unavailable ({@link isUnavailableError}:
   * Postgres restarting or down), keeps the message (`working()`, so JetStream does not redeliver it)
   * and runs it again after a pause (200 ms doubling to 5 s), until it succeeds, fails otherwise or the
   * server closes. Such failures are no fault of the event: they must not use up its deliveries and
   * dead-letter it. The first wait and the recovery are logged, once per outage.
   * @throws what `handle` throws otherwise, or its unavailable error when the server closes.
   */
  private async handleUntilAvailable(
    consumerName: string,
    msg: JsMsg,
    envelope: EventEnvelope,
    handle: () => Promise<void>,
  ): Promise<void> {
    let pauseMs = 200;
    let waited = false;
    try {
      for (;;) {
        try {
          await handle();
          return;
        } catch (error) {
          if (!isUnavailableError(error) || this.closing) throw error;
          if (!waited) {
            waited = true;
            if (this.waitingForDatabase++ === 0)
              this.logger.warn?.(
                `${consumerName}: database unavailable (${describe(error)}); holding ${envelope.eventType} ${envelope.eventId} and retrying`,
              );
          }
          msg.working();
          await new Promise((resolve) => setTimeout(resolve, pauseMs));
          pauseMs = Math.min(pauseMs * 2, 5000);
        }
      }
    } finally {
      if (waited && --this.waitingForDatabase === 0)
        this.logger.log(`${consumerName}: database available again; events resumed`);
    }
  }

  private async deadLetter(
    consumer: string,
    msg: JsMsg,
    payload: string,
    error: unknown,
    attempts: number,
    envelope: EventEnvelope | undefined,
  ): Promise<void> {
    try {
      const recorded = await this.options.deadLetters.record({
        consumer,
        subject: msg.subject,
        payload,
        error: describe(error),
        attempts,
        eventId: envelope?.eventId,
        eventType: envelope?.eventType,
        streamId: envelope?.streamId,
        globalPosition: envelope?.globalPosition,
        streamSequence: msg.info.streamSequence,
      });
      const what = envelope?.eventId ?? `${msg.subject} #${msg.info.streamSequence}`;
      if (recorded) {
        countDeadLetter(consumer);
        this.logger.error(
          { msg: `${consumer}: dead-lettered ${what}: ${describe(error)}`, ...logFieldsOf(envelope) },
          stackOf(error),
        );
      } else
        this.logger.warn?.(`${consumer}: ${what} was already dead-lettered (redelivered before its term)`);
      // No reason argument: servers before 2.10.4 do not understand `+TERM <reason>` and leave the message
      // pending, to be redelivered (and dead-lettered again) after ack_wait. The reason is in the dead letter.
      msg.term();
    } catch (recordError) {
      // Could not record it: never drop, let JetStream redeliver.
      this.logger.error(
        `${consumer}: could not record dead letter: ${describe(recordError)}`,
        stackOf(recordError),
      );
      msg.nak(5000);
    }
  }

  async close(): Promise<void> {
    this.closing = true;
    this.stopReporting?.();
    for (const s of this.subscriptions) s.stop();
    await Promise.allSettled(this.loops);
  }

  on(): never {
    throw new Error('JetStreamEventsServer has no events to listen to');
  }

  unwrap<T>(): T {
    return this.options.connection as T;
  }
}

function describe(error: unknown): string {
  if (error instanceof Error) return `${error.name}: ${error.message}`;
  try {
    return JSON.stringify(error);
  } catch {
    return String(error);
  }
}

/** The stack of a thrown Error (logged with the line), or undefined. */
const stackOf = (error: unknown): string | undefined => (error instanceof Error ? error.stack : undefined);

/** The fields every log line about an event carries: its id, type and correlation id. */
function logFieldsOf(envelope: EventEnvelope | undefined): Record<string, string> {
  if (!envelope) return {};
  return {
    event_id: envelope.eventId,
    event_type: envelope.eventType,
    ...(envelope.metadata.correlationId !== undefined
      ? { correlation_id: envelope.metadata.correlationId }
      : {}),
  };
}
