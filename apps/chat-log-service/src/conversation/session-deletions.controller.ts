import { Controller, Logger } from '@nestjs/common';
import { Payload } from '@nestjs/microservices';
import { type EventEnvelope, SessionDeletedV1, UserErasedV1 } from '@threadline/contracts';
import { Db } from '@threadline/event-store';
import { OnEvent } from '@threadline/messaging';
import { TurnsProjection } from './turns.projection';

/**
 * Deleting a session deletes its turns from the `turns` read model: `SessionDeleted` events arrive from
 * JetStream (durable `<service durable>-session`) and the session's rows are removed in one transaction.
 * Idempotent (a redelivery finds nothing left to remove). A throw naks the message (redelivery with
 * backoff, then a dead letter: see `JetStreamEventsServer`).
 */
@Controller()
export class SessionDeletionsController {
  private readonly logger = new Logger(SessionDeletionsController.name);

  constructor(
    private readonly db: Db,
    private readonly projection: TurnsProjection,
  ) {}

  /** Removes the deleted session's turns. Throws `ZodError` for an event whose data is not a `SessionDeleted.v1`. */
  @OnEvent(SessionDeletedV1)
  async onSessionDeleted(@Payload() envelope: EventEnvelope): Promise<void> {
    const { sessionId } = SessionDeletedV1.schema.parse(envelope.data);
    const tenantId = envelope.metadata.tenantId;
    const removed = await this.db.transaction((sql) =>
      this.projection.deleteSessionTurns(sql, tenantId, sessionId),
    );
    if (removed > 0)
      this.logger.log(`turns: removed ${removed} turns of deleted session ${tenantId}/${sessionId}`);
  }

  /**
   * Removes the turns of every session of an erased user (`UserErased`, durable `<service durable>-user`),
   * in one transaction. Their events are already tombstoned in the event store, so a rebuild of `turns`
   * never brings them back either. Throws `ZodError` for data that is not a `UserErased.v1`.
   */
  @OnEvent(UserErasedV1)
  async onUserErased(@Payload() envelope: EventEnvelope): Promise<void> {
    const { sessionIds, userId } = UserErasedV1.schema.parse(envelope.data);
    const tenantId = envelope.metadata.tenantId;
    const removed = await this.db.transaction(async (sql) => {
      let n = 0;
      for (const sessionId of sessionIds)
        n += await this.projection.deleteSessionTurns(sql, tenantId, sessionId);
      return n;
    });
    this.logger.log(`turns: removed ${removed} turns of erased user ${tenantId}/${userId}`);
  }
}
