import type { INestApplication } from '@nestjs/common';
import type { NatsConnection } from './nats-connection';
import { type DeadLetterSink, JetStreamEventsServer } from './jetstream-events.server';
import { NATS_CONNECTION } from './messaging.module';
import { RpcErrorReplyFilter, requestTransportOptions } from './request-reply';
import type { NatsSettings } from './nats-connection';

/**
 * Connects a service's transports: commands and queries over core NATS in the queue group `queue`
 * (every instance shares the load), and, when `events` is given, JetStream durable consumers for its
 * `@OnEvent`/`@OnStream` handlers. Starts them and returns when they listen. The request transport also
 * answers the service's health ping (`pingOf(queue)`), with `postgres: 'up'` while `health` (e.g.
 * `SELECT 1` on the service's pool) succeeds.
 */
export async function startServiceTransports(
  app: INestApplication,
  settings: NatsSettings & { NATS_SUBJECT_PREFIX: string; NATS_STREAM: string },
  opts: {
    queue: string;
    events?: { durable: string; deadLetters: DeadLetterSink };
    health?: () => Promise<unknown>;
  },
): Promise<void> {
  app.useGlobalFilters(new RpcErrorReplyFilter());
  app.connectMicroservice(
    requestTransportOptions(settings, opts.queue, opts.health ? { health: opts.health } : {}),
    { inheritAppConfig: true },
  );
  if (opts.events) {
    app.connectMicroservice(
      {
        strategy: new JetStreamEventsServer({
          connection: app.get<NatsConnection>(NATS_CONNECTION),
          stream: settings.NATS_STREAM,
          prefix: settings.NATS_SUBJECT_PREFIX,
          durable: opts.events.durable,
          deadLetters: opts.events.deadLetters,
        }),
      },
      { inheritAppConfig: true },
    );
  }
  await app.startAllMicroservices();
}
