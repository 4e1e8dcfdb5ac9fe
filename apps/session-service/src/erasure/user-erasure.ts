import { Logger, type OnApplicationBootstrap, type OnModuleDestroy } from '@nestjs/common';
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
import { z } from 'zod';

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
  /**
   * How often pending purges (failed, or left by a stopped instance) are retried, ms (default 30,000);
   * also once at boot. 0: only when the same user is erased again or {@link UserErasure.retryPendingPurges}
   * is called.
   */
  purgeRetryMs?: number;
  /**
   * How long an instance holds a purge it runs before another may take it over, ms (default 300,000:
   * longer than a purge that reads a large stream; an instance that stopped mid-purge is replaced then).
   */
  purgeLeaseMs?: number;
  /**
   * Test-only fault injection: called before each purge attempt with the erasure id and the attempt
   * number (1 for the first); what it throws fails that attempt as a NATS error would.
   */
  beforePurge?: (erasureId: number, attempt: number) => void | Promise<void>;
}

/** A purge still to do: an `erasures` row with `completed_at` NULL (migration `ErasurePurges1732950000000`). */
const PendingPurge = z.object({
  id: z.coerce.number().int(),
  event_ids: z.array(z.string()),
  purge_from: z.date().nullable(),
  purge_attempts: z.number().int(),
});
type PendingPurge = z.infer<typeof PendingPurge>;

/** What {@link UserErasure.retryPendingPurges} did: purges completed (and messages they deleted), failed. */
export interface PurgeRetries {
  completed: number;
  deleted: number;
  failed: number;
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
 *
 * **A failed purge is retried until it succeeds.** Step 3 runs after step 1 committed, so its failure
 * (NATS down, a timeout) cannot roll the erasure back, and a repeated erasure would find nothing left to
 * purge. So step 1 records the purge in the same transaction, on its `erasures` row (the event ids and
 * the oldest event's time; `completed_at` NULL until the purge is done: migration
 * `ErasurePurges1732950000000`). A failed purge stays pending (attempts and last error on the row), the
 * erasure fails with its error, and the purge is retried: when the same user is erased again (the
 * receipt then counts the messages it deleted), and every `purgeRetryMs` and at boot by every instance
 * (Nest lifecycle hooks), which is what retries it when nobody asks again. Why Postgres and not a
 * JetStream work queue: the purge must be recorded atomically with the erasure, and Postgres is the
 * system of record (ARCHITECTURE rule 1). An instance runs a purge under a lease (`purgeLeaseMs`), so
 * instances do not purge the same erasure at once; deleting a message twice is harmless anyway.
 */
export class UserErasure implements OnApplicationBootstrap, OnModuleDestroy {
  private readonly now: () => Date;
  private readonly logger = new Logger(UserErasure.name);
  private timer: NodeJS.Timeout | undefined;
  private retrying: Promise<unknown> | undefined;

  constructor(
    private readonly store: EventStore,
    private readonly jetStream: ErasureJetStream,
    private readonly options: UserErasureOptions = {},
  ) {
    this.now = options.now ?? (() => new Date());
  }

  /** Retries pending purges at boot, then every `purgeRetryMs` (see the class doc). */
  onApplicationBootstrap(): void {
    const every = this.options.purgeRetryMs ?? 30_000;
    if (every <= 0) return;
    const tick = () => {
      if (this.retrying) return;
      this.retrying = this.retryPendingPurges()
        .catch((error: unknown) => this.logger.error(`pending JetStream purges: ${describe(error)}`))
        .finally(() => (this.retrying = undefined));
    };
    tick();
    this.timer = setInterval(tick, every);
    this.timer.unref();
  }

  /** Stops the retries; waits for a retry under way. */
  async onModuleDestroy(): Promise<void> {
    clearInterval(this.timer);
    await this.retrying;
  }

  /**
   * Erases user `userId` of the context's tenant and answers the receipt (see the class doc); its
   * `jetstream_messages_deleted` also counts the messages of this user's earlier erasures whose purge
   * had failed and is done now.
   * @throws the purge's error when this erasure's JetStream purge failed (the erasure committed and its
   * purge is pending: it will be retried).
   */
  async erase(context: CommandContext, userId: string): Promise<UserErasureReceipt> {
    const erased = await this.eraseInStore(context, userId);
    if (erased.eventIds.length > 0) await this.waitForRelay(erased.erasedEvent);
    let deleted = 0;
    let failure: Error | undefined;
    for (const purge of await this.claimPurges({
      tenantId: context.tenantId,
      userId,
      own: erased.erasureId,
    })) {
      try {
        deleted += await this.runPurge(purge);
      } catch (error) {
        if (purge.id === erased.erasureId)
          failure = error instanceof Error ? error : new Error(describe(error));
      }
    }
    if (failure !== undefined) throw failure;
    const completedAt = this.now().toISOString();
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
           AND data->'sessionId' IS NOT NULL
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
        `UPDATE events SET data = $2::json, metadata = jsonb_build_object('tenantId', tenant_id, 'erased', true)
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
      let oldest: Date | null = null;
      for (const t of tombstoned) if (oldest === null || t.created_at < oldest) oldest = t.created_at;
      // The purge is pending from here (see the class doc), held by this call for `purgeLeaseMs`.
      const [record] = await sql.query<{ id: string }>(
        `INSERT INTO erasures (tenant_id, user_id, erased_at, sessions, turns, events,
                               purge_event_ids, purge_from, purge_lease_until)
         VALUES ($1, $2, $3::timestamptz, $4, $5, $6, $7::uuid[], $8, now() + $9 * interval '1 millisecond')
         RETURNING id`,
        [
          tenantId,
          userId,
          erasedAt,
          sessions,
          turns,
          tombstoned.length,
          tombstoned.map((t) => t.event_id),
          oldest,
          this.leaseMs(),
        ],
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
   * Runs every pending purge no other instance holds (oldest first), each under a lease; a failure is
   * recorded on its row and the others still run. Called every `purgeRetryMs` and at boot.
   * @throws only when Postgres fails.
   */
  async retryPendingPurges(): Promise<PurgeRetries> {
    const result: PurgeRetries = { completed: 0, deleted: 0, failed: 0 };
    for (const purge of await this.claimPurges({})) {
      try {
        result.deleted += await this.runPurge(purge);
        result.completed += 1;
      } catch {
        result.failed += 1;
      }
    }
    return result;
  }

  // Takes the lease of the pending purges (of one user when given; `own`, held by the caller, too).
  private async claimPurges(of: {
    tenantId?: string;
    userId?: string;
    own?: number;
  }): Promise<PendingPurge[]> {
    const rows = await this.store.db.query(
      `UPDATE erasures SET purge_lease_until = now() + $4 * interval '1 millisecond'
       WHERE completed_at IS NULL AND purge_event_ids IS NOT NULL
         AND ($1::text IS NULL OR tenant_id = $1) AND ($2::text IS NULL OR user_id = $2)
         AND (id = $3 OR purge_lease_until IS NULL OR purge_lease_until < now())
       RETURNING id, purge_event_ids::text[] AS event_ids, purge_from, purge_attempts`,
      [of.tenantId ?? null, of.userId ?? null, of.own ?? null, this.leaseMs()],
    );
    return rows.map((r) => PendingPurge.parse(r)).sort((a, b) => a.id - b.id);
  }

  /**
   * One attempt of a claimed purge: deletes its messages, then completes its row (count, `completed_at`,
   * ids cleared). On failure records the attempt and error, frees the lease and rethrows.
   */
  private async runPurge(purge: PendingPurge): Promise<number> {
    const attempt = purge.purge_attempts + 1;
    let deleted = 0;
    try {
      await this.options.beforePurge?.(purge.id, attempt);
      if (purge.event_ids.length > 0 && purge.purge_from !== null) {
        deleted = await this.purgeJetStream(new Set(purge.event_ids), purge.purge_from);
      }
    } catch (error) {
      this.logger.error(
        `erasure ${purge.id}: JetStream purge attempt ${attempt} failed, will be retried: ${describe(error)}`,
      );
      await this.store.db.query(
        `UPDATE erasures SET purge_attempts = $2, purge_error = $3, purge_lease_until = NULL WHERE id = $1`,
        [purge.id, attempt, describe(error).slice(0, 4000)],
      );
      throw error;
    }
    await this.store.db.query(
      `UPDATE erasures SET jetstream_messages_deleted = $2, completed_at = $3, purge_event_ids = NULL,
         purge_attempts = $4, purge_error = NULL, purge_lease_until = NULL
       WHERE id = $1`,
      [purge.id, deleted, this.now().toISOString(), attempt],
    );
    return deleted;
  }

  private leaseMs(): number {
    return this.options.purgeLeaseMs ?? 300_000;
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

function describe(error: unknown): string {
  return error instanceof Error ? `${error.name}: ${error.message}` : String(error);
}
