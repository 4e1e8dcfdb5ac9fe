import {
  type EventEnvelope,
  EventRegistry,
  type ParsedEvent,
  SESSION_CATEGORY,
  SessionEvents,
} from '@threadline/contracts';
import type { Projection, Sql } from '@threadline/event-store';
import type { SessionDomainEvent } from './session.decider';

/** Knows the session events and their upcasters (none yet): envelopes become latest-version events. */
export const sessionEventRegistry = new EventRegistry(SessionEvents);

/**
 * The `sessions` read model (table of migration `Sessions1732200000000`).
 *
 * Used inline: `sessionsProjection.inline` is the `inline` callback of `EventStoreTransaction.append`,
 * so a session's row commits with its events and queries see a write as soon as it is acknowledged.
 * It is also a {@link Projection} (`sessions`, stream type `session`) so a `ProjectionRunner` can
 * rebuild it by replaying the event store.
 *
 * Idempotent: `version` holds the stream position of the last event applied, and an event at or
 * below it changes nothing, so replaying events twice gives the same rows as once (ARCHITECTURE
 * rule 6). Times come from the events' data (`startedAt`, `changedAt`, ...), never from the clock.
 * A title or metadata change counts as activity (`last_activity_at`); ending and expiring do not.
 */
export class SessionsProjection implements Projection<ParsedEvent<typeof SessionEvents>> {
  readonly name = 'sessions';
  readonly streamTypes = [SESSION_CATEGORY] as const;

  /** The `inline` callback of `append`: applies the just-stored events in the append's transaction. */
  readonly inline = async (sql: Sql, events: EventEnvelope[]): Promise<void> => {
    for (const envelope of events) await this.apply(sql, sessionEventRegistry.parse(envelope));
  };

  /** Applies one stored session event. Throws for a non-session event or invalid data. */
  async apply(sql: Sql, parsed: ParsedEvent<typeof SessionEvents>): Promise<void> {
    await this.applyEvent(sql, parsed, parsed.envelope);
  }

  /** Empties the read model (start of a rebuild). */
  async reset(sql: Sql): Promise<void> {
    await sql.query('DELETE FROM sessions');
  }

  private async applyEvent(sql: Sql, event: SessionDomainEvent, envelope: EventEnvelope): Promise<void> {
    const tenantId = envelope.metadata.tenantId;
    const position = envelope.streamPosition;
    const global = envelope.globalPosition;
    // $1 tenant, $2 session, $3 stream position, $4 global position; each UPDATE skips applied events.
    const guard = 'WHERE tenant_id = $1 AND session_id = $2 AND version < $3';
    const moved = 'version = $3, last_global_position = $4';
    switch (event.type) {
      case 'SessionCreated.v1': {
        const e = event.data;
        await sql.query(
          `INSERT INTO sessions (tenant_id, session_id, user_id, title, status, metadata, created_from,
                                 created_at, updated_at, last_activity_at, ended_at, version, last_global_position)
           VALUES ($1, $2, $5, $6, 'active', $7::jsonb, $8, $9::timestamptz, $9::timestamptz, $9::timestamptz, NULL, $3, $4)
           ON CONFLICT (tenant_id, session_id) DO NOTHING`,
          [
            tenantId,
            e.sessionId,
            position,
            global,
            e.userId,
            e.title,
            JSON.stringify(e.metadata),
            e.createdFrom,
            e.startedAt,
          ],
        );
        return;
      }
      case 'SessionTitleChanged.v1': {
        const e = event.data;
        await sql.query(
          `UPDATE sessions SET title = $5, updated_at = $6::timestamptz,
             last_activity_at = GREATEST(last_activity_at, $6::timestamptz), ${moved} ${guard}`,
          [tenantId, e.sessionId, position, global, e.title, e.changedAt],
        );
        return;
      }
      case 'SessionMetadataUpdated.v1': {
        const e = event.data;
        // RFC 7396 at the top level: `||` sets every key of the patch, then the null-valued ones are removed.
        const removed = Object.entries(e.patch)
          .filter(([, value]) => value === null)
          .map(([key]) => key);
        await sql.query(
          `UPDATE sessions SET metadata = (metadata || $5::jsonb) - $6::text[], updated_at = $7::timestamptz,
             last_activity_at = GREATEST(last_activity_at, $7::timestamptz), ${moved} ${guard}`,
          [tenantId, e.sessionId, position, global, JSON.stringify(e.patch), removed, e.updatedAt],
        );
        return;
      }
      case 'SessionEnded.v1': {
        const e = event.data;
        await sql.query(
          `UPDATE sessions SET status = 'ended', ended_at = $5::timestamptz, updated_at = $5::timestamptz, ${moved} ${guard}`,
          [tenantId, e.sessionId, position, global, e.endedAt],
        );
        return;
      }
      case 'SessionExpired.v1': {
        // Expired sessions keep their row (status `expired`); `ended_at` is when they expired, the
        // time the retention policy counts from.
        const e = event.data;
        await sql.query(
          `UPDATE sessions SET status = 'expired', ended_at = $5::timestamptz, updated_at = $5::timestamptz, ${moved} ${guard}`,
          [tenantId, e.sessionId, position, global, e.expiredAt],
        );
        return;
      }
      case 'SessionDeleted.v1':
        // Deleted sessions leave the read model: 404 everywhere afterwards.
        await sql.query(`DELETE FROM sessions ${guard}`, [tenantId, event.data.sessionId, position]);
        return;
      default: {
        const unreachable: never = event;
        return unreachable;
      }
    }
  }
}
