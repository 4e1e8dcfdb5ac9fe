import { headers, nanos, type NatsConnection } from '@nats-io/transport-node';
import {
  jetstream,
  jetstreamManager,
  RetentionPolicy,
  StorageType,
  type JetStreamClient,
} from '@nats-io/jetstream';
import { eventSubject, type EventEnvelope } from '@threadline/contracts';

import {
  contextOf,
  injectTrace,
  inSpan,
  PayloadTooLargeError,
  SpanKind,
  tracingEnabled,
} from '@threadline/platform';

/** JetStream's duplicate window: a republish of the same event id within it is dropped (ms). */
export const DUPLICATE_WINDOW_MS = 10 * 60 * 1000;

/**
 * Creates the events stream if missing: subjects `<prefix>.evt.>`, file storage, limits retention,
 * a 10-minute duplicate window for the relay's `Nats-Msg-Id` deduplication.
 */
export async function ensureEventStream(nc: NatsConnection, name: string, prefix: string): Promise<void> {
  const jsm = await jetstreamManager(nc);
  const config = {
    name,
    subjects: [`${prefix}.evt.>`],
    storage: StorageType.File,
    retention: RetentionPolicy.Limits,
    duplicate_window: nanos(DUPLICATE_WINDOW_MS),
  };
  try {
    await jsm.streams.info(name);
  } catch {
    try {
      await jsm.streams.add(config);
    } catch (error) {
      // Another service created it between our info and our add.
      await jsm.streams.info(name).catch(() => {
        throw error;
      });
    }
  }
}

/** Deletes the events stream (test and tooling clean-up). */
export async function deleteEventStream(nc: NatsConnection, name: string): Promise<void> {
  const jsm = await jetstreamManager(nc);
  await jsm.streams.delete(name).catch(() => false);
}

/** Bytes kept for the headers of an event message (ours and JetStream's take under 300). */
const HEADER_RESERVE_BYTES = 1024;

/**
 * Publishes stored events to JetStream for the relay: subject derived from the contract
 * (`<prefix>.evt.<streamType>.<EventType>`), `Nats-Msg-Id = eventId`, resolves on the stream's ack.
 * Rejects with `PayloadTooLargeError` (before sending anything) when the event's JSON does not fit
 * in the server's `max_payload` (less 1 KiB for headers): such an event can never be delivered.
 */
export class JetStreamPublisher {
  private readonly js: JetStreamClient;

  constructor(
    private readonly nc: NatsConnection,
    private readonly prefix: string,
    private readonly stream: string,
  ) {
    this.js = jetstream(nc);
  }

  async publish(event: EventEnvelope): Promise<void> {
    const body = Buffer.from(JSON.stringify(event));
    const maxPayload = this.nc.info?.max_payload;
    if (maxPayload !== undefined && body.length + HEADER_RESERVE_BYTES > maxPayload)
      throw new PayloadTooLargeError(
        `Event ${event.eventId}`,
        body.length,
        maxPayload - HEADER_RESERVE_BYTES,
      );
    const h = headers();
    h.set('Tl-Event-Type', event.eventType);
    h.set('Tl-Tenant-Id', event.metadata.tenantId);
    const subject = eventSubject(this.prefix, event.streamType, event.eventType);
    const send = async () => {
      await this.js.publish(subject, body, {
        msgID: event.eventId,
        headers: h,
        expect: { streamName: this.stream },
      });
    };
    if (!tracingEnabled() || event.metadata.traceparent === undefined) return send();
    // A PRODUCER span continuing the trace the event was appended in (its metadata's `traceparent`),
    // sent on in the message's headers for the consumers.
    return inSpan(
      `publish ${event.eventType}`,
      {
        kind: SpanKind.PRODUCER,
        parent: contextOf(event.metadata.traceparent),
        attributes: {
          'messaging.system': 'nats',
          'messaging.destination.name': subject,
          'messaging.message.id': event.eventId,
        },
      },
      () => {
        injectTrace((name, value) => h.set(name, value));
        return send();
      },
    );
  }
}
