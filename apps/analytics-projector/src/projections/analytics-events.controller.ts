import { Controller, Inject, Logger } from '@nestjs/common';
import { Payload } from '@nestjs/microservices';
import {
  CONVERSATION_CATEGORY,
  type EventEnvelope,
  SESSION_CATEGORY,
  USER_CATEGORY,
} from '@threadline/contracts';
import type { ProjectionRunner } from '@threadline/event-store';
import { OnStream, PROJECTION_CONCURRENCY } from '@threadline/messaging';

/** Token of the `ProjectionRunner` of the `usage_stats` projection. */
export const USAGE_STATS_RUNNER = Symbol('USAGE_STATS_RUNNER');

/**
 * Feeds the events of JetStream's durable consumers (`analytics-projector-session`,
 * `analytics-projector-conversation`, `analytics-projector-user`) to the `usage_stats` runner, which
 * applies idempotently, backfills gaps from the event store and checkpoints in the same transaction.
 * Each consumer hands up to `PROJECTION_CONCURRENCY` messages at once to the runner, which commits the
 * calls that arrive together in one transaction (see `ProjectionRunner.handle`).
 * One handler per stream type (the transport keys handlers by pattern). A throw naks the message
 * (redelivery with backoff, then a dead letter, see `JetStreamEventsServer`); a runner that already
 * applied the event skips it on redelivery.
 */
@Controller()
export class AnalyticsEventsController {
  private readonly logger = new Logger(AnalyticsEventsController.name);

  constructor(@Inject(USAGE_STATS_RUNNER) private readonly usageStats: ProjectionRunner) {}

  @OnStream(SESSION_CATEGORY, { concurrency: PROJECTION_CONCURRENCY })
  async onSessionEvent(@Payload() envelope: EventEnvelope): Promise<void> {
    await this.handle(this.usageStats, envelope);
  }

  @OnStream(CONVERSATION_CATEGORY, { concurrency: PROJECTION_CONCURRENCY })
  async onConversationEvent(@Payload() envelope: EventEnvelope): Promise<void> {
    await this.handle(this.usageStats, envelope);
  }

  /** `UserErased` (durable `analytics-projector-user`): the erased user's sessions leave usage_stats. */
  @OnStream(USER_CATEGORY, { concurrency: PROJECTION_CONCURRENCY })
  async onUserEvent(@Payload() envelope: EventEnvelope): Promise<void> {
    await this.handle(this.usageStats, envelope);
  }

  private async handle(runner: ProjectionRunner, envelope: EventEnvelope): Promise<void> {
    const outcome = await runner.handle(envelope);
    if (outcome === 'backfilled') {
      this.logger.log(
        `${runner.projection.name}: backfilled ${envelope.streamId} up to position ${envelope.streamPosition}`,
      );
    }
  }
}
