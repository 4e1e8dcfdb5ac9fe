import { Controller, Inject, Logger } from '@nestjs/common';
import { Payload } from '@nestjs/microservices';
import { CONVERSATION_CATEGORY, type EventEnvelope } from '@threadline/contracts';
import type { ProjectionRunner } from '@threadline/event-store';
import { OnStream, PROJECTION_CONCURRENCY } from '@threadline/messaging';

/** Token of the `ProjectionRunner` of the `session_context` projection. */
export const SESSION_CONTEXT_RUNNER = Symbol('SESSION_CONTEXT_RUNNER');

/**
 * Feeds every conversation event from JetStream (durable `session-service-conversation`) to the
 * `session_context` runner, which applies it idempotently (an event already applied is skipped),
 * backfills a gap from the event store, and commits the row update with the projection's positions
 * and checkpoint; up to `PROJECTION_CONCURRENCY` messages at once, committed together (group commit,
 * see `ProjectionRunner.handle`). A throw naks the message (redelivery with backoff, then a dead letter: see
 * `JetStreamEventsServer`).
 */
@Controller()
export class SessionContextController {
  private readonly logger = new Logger(SessionContextController.name);

  constructor(@Inject(SESSION_CONTEXT_RUNNER) private readonly runner: ProjectionRunner) {}

  /** Applies one conversation event (any type) to the session it belongs to. */
  @OnStream(CONVERSATION_CATEGORY, { concurrency: PROJECTION_CONCURRENCY })
  async onConversationEvent(@Payload() envelope: EventEnvelope): Promise<void> {
    const outcome = await this.runner.handle(envelope);
    if (outcome === 'backfilled') {
      this.logger.log(
        `session_context: backfilled ${envelope.streamId} up to position ${envelope.streamPosition}`,
      );
    }
  }
}
