import { jetstreamManager } from '@nats-io/jetstream';
import type { NatsConnection } from '@nats-io/transport-node';
import {
  deadLettersTotal,
  jetstreamConsumerAckPending,
  jetstreamConsumerPending,
  jetstreamRedeliveriesTotal,
  natsRequestDuration,
  onScrape,
} from '@threadline/platform';

/**
 * The messaging Prometheus metrics (defined in `@threadline/platform`'s catalog): NATS request handling
 * duration by subject, JetStream consumers' pending and redelivered messages, dead letters. Label
 * values are subjects of the contracts and durable consumer names: bounded by the code.
 */

type Timer = ReturnType<typeof natsRequestDuration.labels>;
const requestTimers = new Map<string, Timer>();

/** The `nats_request_handling_duration_seconds` series of `subject` (looked up once per subject). */
export function requestTimerOf(subject: string): Timer {
  let timer = requestTimers.get(subject);
  if (!timer) {
    timer = natsRequestDuration.labels(subject);
    requestTimers.set(subject, timer);
  }
  return timer;
}

/** Counts a delivery after the first of a message of `consumer`. */
export const countRedelivery = (consumer: string): void => jetstreamRedeliveriesTotal.labels(consumer).inc();

/** Counts a dead letter recorded by `consumer`. */
export const countDeadLetter = (consumer: string): void => deadLettersTotal.labels(consumer).inc();

/**
 * Reports the pending (`num_pending`) and acknowledgement-pending (`num_ack_pending`) messages of the
 * durable `consumers` of `stream` at each scrape, from JetStream's consumer info. Returns the
 * unregistering function.
 */
export function reportConsumers(
  nc: NatsConnection,
  stream: string,
  consumers: readonly string[],
): () => void {
  return onScrape(async () => {
    if (nc.isClosed()) return;
    const jsm = await jetstreamManager(nc);
    await Promise.all(
      consumers.map(async (name) => {
        const info = await jsm.consumers.info(stream, name);
        jetstreamConsumerPending.labels(name).set(info.num_pending);
        jetstreamConsumerAckPending.labels(name).set(info.num_ack_pending);
      }),
    );
  });
}
