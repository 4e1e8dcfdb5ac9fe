import { Controller, Inject, Logger } from '@nestjs/common';
import { Payload } from '@nestjs/microservices';
import { type EventEnvelope, SESSION_CATEGORY } from '@threadline/contracts';
import type { ProjectionRunner } from '@threadline/event-store';
import { OnStream } from '@threadline/messaging';

/** Token of the `ProjectionRunner` of the `session_counts` projection. */
export const SESSION_COUNTS_RUNNER = Symbol('SESSION_COUNTS_RUNNER');

/**
 * Feeds every session event from JetStream (durable `analytics-projector-session`) to the
 * `session_counts` runner, which applies it idempotently, backfills gaps from the event store and
 * checkpoints in the same transaction. A throw naks the message (redelivery with backoff, then a
 * dead letter: see `JetStreamEventsServer`).
 */
@Controller()
export class SessionCountsController {
  private readonly logger = new Logger(SessionCountsController.name);

  constructor(@Inject(SESSION_COUNTS_RUNNER) private readonly runner: ProjectionRunner) {}

  @OnStream(SESSION_CATEGORY)
  async onSessionEvent(@Payload() envelope: EventEnvelope): Promise<void> {
    const outcome = await this.runner.handle(envelope);
    if (outcome === 'backfilled') {
      this.logger.log(
        `session_counts: backfilled ${envelope.streamId} up to position ${envelope.streamPosition}`,
      );
    }
  }
}
