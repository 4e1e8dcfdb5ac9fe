import { DeliverPolicy, jetstream, jetstreamManager } from '@nats-io/jetstream';
import type { NatsConnection } from '@nats-io/transport-node';
import {
  type CommandContext,
  CONVERSATION_CATEGORY,
  conversationStreamId,
  ERASED_DATA,
  SESSION_CATEGORY,
  SESSION_STATE_CATEGORY,
  sessionStateStreamId,
  sessionStreamId,
  USER_CATEGORY,
  UserErasedV1,
  type UserErasureReceipt,
  userStreamId,
} from '@threadline/contracts';
import { Checkpoints, type EventStore, eventMetadata } from '@threadline/event-store';

/** Where the erasure deletes the user's messages from: the events stream and its subject prefix. */
export interface ErasureJetStream {
  nc: NatsConnection;
  /** JetStream stream of the events (`NATS_STREAM`). */
  stream: string;
  /** Subject prefix (`NATS_SUBJECT_PREFIX`): events are on `<prefix>.evt.<category>.<Type>`. */
  prefix: string;
}

export interface UserErasureOptions {
  /**
   * How long to wait, after the event store's erasure committed, for the relay's checkpoint to pass
   * the `UserErased` event (ms, default 3,000: the erasure answers within the gateway's `REQUEST_TIMEOUT_MS`): from then on every event of the user that reaches
   * JetStream is a tombstone, and the messages published before are all there to delete.
   */
  relayWaitMs?: number;
  /** The relay's checkpoint name (default `relay`, the `Relay`'s default). */
  relayCheckpoint?: string;
  /** The clock of `erasedAt` / `completed_at` (default the system clock). */
  now?: () => Date;
}

/** What the event-store part of an erasure did (see {@link UserErasure.eraseInStore}). */
export interface StoreErasure {
  sessionIds: string[];
  sessions: number;
  turns: number;
  events: number;
  /** Event ids of the tombstoned events (their JetStream `Nats-Msg-Id`). */
  eventIds: string[];
  /** Creation time of the oldest tombstoned event; null when nothing was erased. */
  oldest: Date | null;
  /** Where the `UserErased` event committed: the relay must pass it before JetStream is purged. */
  erasedEvent: { transactionId: string; globalPosition: number };
  erasureId: number;
}

const TOMBSTONE = JSON.stringify(ERASED_DATA);

/**
 * Erases one user (`DELETE /users/{user_id}`, issue 4 "Deletion users can verify") by **purge**:
 *
 * 1. One event-store transaction (serialized per tenant and user, and with the user's session starts
 *    by the `current-session:<tenant>:<user>` lock): finds the user's sessions in the `sessions` read
 *    model and in the events (`data.userId` of `SessionCreated`, `metadata.userId` of every event, so
 *    deleted sessions are found too); tombstones every event of their `session`, `session-state` and
 *    `conversation` streams (`data` becomes `{"erased": true}`, `metadata` only `tenantId` and
 *    `erased: true`; ids, types and positions stay, so stream versions and global positions are
 *    intact); deletes their rows from the session-service's read models (`sessions` with its turn
 *    context, `session_states`), their dead letters and the stored replies of their idempotent
 *    writes; records an `erasures` row; appends `UserErased.v1` (user id, session ids, counts) on
 *    `user:<tenant>:<user>`, from which the chat-log-service (turns) and the analytics projector
 *    (usage stats) drop the sessions' rows.
 * 2. Waits (bounded, `relayWaitMs`) for the relay to publish past `UserErased`: events not yet published
 *    go out tombstoned.
 * 3. Deletes the user's messages from the JetStream stream: reads the stream's session, state and
 *    conversation subjects from the oldest erased event's time (headers only, an ordered consumer),
 *    and deletes (with erase) every message whose `Nats-Msg-Id` is one of the erased event ids.
 *
 * A repeated erasure finds nothing left and answers zero counts. Projections skip erased events
 * (`isErased`), so a rebuild never brings the data back.
 */
export class UserErasure {
  private readonly now: () => Date;

  constructor(
    private readonly store: EventStore,
    private readonly jetStream: ErasureJetStream,
    private readonly options: UserErasureOptions = {},
  ) {
    this.now = options.now ?? (() => new Date());
  }

  /** Erases user `userId` of the context's tenant and answers the receipt (see the class doc). */
  async erase(context: CommandContext, userId: string): Promise<UserErasureReceipt> {
    const erased = await this.eraseInStore(context, userId);
    let deleted = 0;
    if (erased.eventIds.length > 0 && erased.oldest !== null) {
      await this.waitForRelay(erased.erasedEvent);
      deleted = await this.purgeJetStream(new Set(erased.eventIds), erased.oldest);
    }
    const completedAt = this.now().toISOString();
    await this.store.db.query(
      'UPDATE erasures SET jetstream_messages_deleted = $2, completed_at = $3 WHERE id = $1',
      [erased.erasureId, deleted, completedAt],
    );
    return {
      user_id: userId,
      sessions_deleted: erased.sessions,
      turns_deleted: erased.turns,
      events_erased: erased.events,
      jetstream_messages_deleted: deleted,
      completed_at: completedAt,
    };
  }

  /** Step 1 of {@link erase}: the event store and this service's read models, in one transaction. */
  async eraseInStore(context: CommandContext, userId: string): Promise<StoreErasure> {
    const tenantId = context.tenantId;
    return this.store.transaction(async (tx) => {
      const sql = tx.sql;
      await tx.lock(`current-session:${tenantId}:${userId}`);
      await tx.lock(`erasure:${tenantId}:${userId}`);
      const found = await sql.query<{ session_id: string }>(
        `SELECT session_id FROM sessions WHERE tenant_id = $1 AND user_id = $2
         UNION
         SELECT data->>'sessionId' FROM events
         WHERE tenant_id = $1 AND metadata->>'userId' = $2 AND stream_type = ANY($3::text[])
           AND data ? 'sessionId'
         UNION
         SELECT data->>'sessionId' FROM events
         WHERE tenant_id = $1 AND stream_type = $4 AND event_type = 'SessionCreated.v1' AND data->>'userId' = $2`,
        [
          tenantId,
          userId,
          [SESSION_CATEGORY, SESSION_STATE_CATEGORY, CONVERSATION_CATEGORY],
          SESSION_CATEGORY,
        ],
      );
      const sessionIds = found.map((r) => r.session_id).sort();
      const sessionStreams = sessionIds.map((id) => sessionStreamId(tenantId, id));
      const conversationStreams = sessionIds.map((id) => conversationStreamId(tenantId, id));
      const streams = [
        ...sessionStreams,
        ...sessionIds.map((id) => sessionStateStreamId(tenantId, id)),
        ...conversationStreams,
      ];

      const [counts] = await sql.query<{ sessions: string; turns: string }>(
        `SELECT
           (SELECT count(DISTINCT stream_id) FROM events
            WHERE stream_id = ANY($1::text[]) AND NOT metadata ? 'erased') AS sessions,
           (SELECT count(DISTINCT data->>'turnId') FROM events
            WHERE stream_id = ANY($2::text[]) AND NOT metadata ? 'erased'
              AND event_type IN ('TurnLogged.v1', 'TurnStarted.v1')) AS turns`,
        [sessionStreams, conversationStreams],
      );
      const tombstoned = await sql.query<{ event_id: string; created_at: Date }>(
        `UPDATE events SET data = $2::jsonb, metadata = jsonb_build_object('tenantId', tenant_id, 'erased', true)
         WHERE stream_id = ANY($1::text[]) AND NOT metadata ? 'erased'
         RETURNING event_id::text AS event_id, created_at`,
        [streams, TOMBSTONE],
      );

      await sql.query('DELETE FROM sessions WHERE tenant_id = $1 AND session_id = ANY($2::text[])', [
        tenantId,
        sessionIds,
      ]);
      await sql.query('DELETE FROM session_states WHERE tenant_id = $1 AND session_id = ANY($2::text[])', [
        tenantId,
        sessionIds,
      ]);
      await sql.query('DELETE FROM dead_letters WHERE stream_id = ANY($1::text[])', [streams]);
      // Replies stored for retries of idempotent writes hold the session, turn or state as answered.
      await sql.query(
        `DELETE FROM idempotency_keys WHERE tenant_id = $1 AND (
           reply #>> '{session,session_id}' = ANY($2::text[]) OR reply #>> '{session,user_id}' = $3
           OR reply #>> '{turn,session_id}' = ANY($2::text[]) OR reply #>> '{turn,user_id}' = $3
           OR reply #>> '{state,session_id}' = ANY($2::text[]))`,
        [tenantId, sessionIds, userId],
      );

      const erasedAt = this.now().toISOString();
      const sessions = Number(counts?.sessions ?? 0);
      const turns = Number(counts?.turns ?? 0);
      const [record] = await sql.query<{ id: string }>(
        `INSERT INTO erasures (tenant_id, user_id, erased_at, sessions, turns, events)
         VALUES ($1, $2, $3::timestamptz, $4, $5, $6) RETURNING id`,
        [tenantId, userId, erasedAt, sessions, turns, tombstoned.length],
      );
      const appended = await tx.append(
        userStreamId(tenantId, userId),
        USER_CATEGORY,
        'any',
        [
          {
            type: UserErasedV1.type,
            data: UserErasedV1.schema.parse({
              userId,
              sessionIds,
              sessions,
              turns,
              events: tombstoned.length,
              erasedAt,
            }),
          },
        ],
        { metadata: eventMetadata({ ...context, idempotencyKey: undefined }, userId) },
      );
      const event = appended.events[0]!;
      let oldest: Date | null = null;
      for (const t of tombstoned) if (oldest === null || t.created_at < oldest) oldest = t.created_at;
      return {
        sessionIds,
        sessions,
        turns,
        events: tombstoned.length,
        eventIds: tombstoned.map((t) => t.event_id),
        oldest,
        erasedEvent: { transactionId: event.transactionId, globalPosition: event.globalPosition },
        erasureId: Number(record!.id),
      };
    });
  }

  /**
   * Waits until the relay's checkpoint is at or past `event` (commit order), at most `relayWaitMs`
   * (polls every 25 ms). Answers whether it got there; past the bound the purge runs anyway (the
   * events the relay publishes later are tombstones, unless it had read them before the erasure).
   */
  async waitForRelay(event: { transactionId: string; globalPosition: number }): Promise<boolean> {
    const checkpoints = new Checkpoints(this.store.db);
    const name = this.options.relayCheckpoint ?? 'relay';
    const deadline = Date.now() + (this.options.relayWaitMs ?? 3_000);
    for (;;) {
      const at = await checkpoints.load(name);
      const tx = BigInt(at.transactionId);
      const target = BigInt(event.transactionId);
      if (tx > target || (tx === target && at.globalPosition >= event.globalPosition)) return true;
      if (Date.now() >= deadline) return false;
      await new Promise((resolve) => setTimeout(resolve, 25));
    }
  }

  /**
   * Deletes (with erase: the server overwrites the stored bytes) every message of the events stream
   * whose `Nats-Msg-Id` is in `eventIds`, reading the events subjects (`<prefix>.evt.>`) from
   * `oldest` minus a minute (clock skew between Postgres and NATS) to the end of the stream, headers
   * only. Answers the number of messages deleted.
   */
  async purgeJetStream(eventIds: ReadonlySet<string>, oldest: Date): Promise<number> {
    const { nc, stream, prefix } = this.jetStream;
    const jsm = await jetstreamManager(nc);
    const info = await jsm.streams.info(stream);
    if (info.state.messages === 0) return 0;
    const consumer = await jetstream(nc).consumers.get(stream, {
      // One filter subject: several (`filter_subjects`) need NATS 2.10; the msg-id test does the rest.
      filter_subjects: `${prefix}.evt.>`,
      deliver_policy: DeliverPolicy.StartTime,
      opt_start_time: new Date(oldest.getTime() - 60_000).toISOString(),
      headers_only: true,
    });
    let deleted = 0;
    try {
      for (let done = false; !done;) {
        const batch = await consumer.fetch({ max_messages: 1000, expires: 1000 });
        let received = 0;
        for await (const m of batch) {
          received += 1;
          const id = m.headers?.get('Nats-Msg-Id');
          if (
            id &&
            eventIds.has(id) &&
            (await jsm.streams.deleteMessage(stream, m.seq, true).catch(() => false))
          ) {
            deleted += 1;
          }
          if (m.info.pending === 0) {
            done = true;
            break;
          }
        }
        if (received === 0) done = true;
      }
    } finally {
      await consumer.delete().catch(() => false);
    }
    return deleted;
  }
}
