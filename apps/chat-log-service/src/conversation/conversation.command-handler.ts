import { randomUUID } from 'node:crypto';
import { Inject, Injectable } from '@nestjs/common';
import {
  ConversationEvents,
  type CommandContext,
  type EventEnvelope,
  CONVERSATION_CATEGORY,
  conversationStreamId,
  EventRegistry,
  type LogTurnBody,
  SessionEvents,
  sessionStreamId,
  type TurnWriteReply,
  isErased,
} from '@threadline/contracts';
import {
  EVENT_COLUMNS,
  EventStore,
  EventStoreTransaction,
  eventMetadata,
  type Sql,
  toEnvelope,
} from '@threadline/event-store';
import type { Meter } from '../usage/usage-meter';
import {
  type ConversationCommand,
  type ConversationState,
  decide,
  evolve,
  initialState,
  sessionLifecycleEventOf,
  TurnAlreadyExistsError,
  TurnNotFoundError,
} from './conversation.decider';
import { TurnsProjection } from './turns.projection';
import { findTurn, sessionOfTurnId } from './turns.read-model';

/** Token of the clock commands are stamped with: `() => Date` (tests may pin it). */
export const CONVERSATION_CLOCK = Symbol('CONVERSATION_CLOCK');
export type Clock = () => Date;
/** Token of the {@link Meter} giving agent responses their usage and cost. */
export const USAGE_METER = Symbol('USAGE_METER');

const sessionEventRegistry = new EventRegistry(SessionEvents);
const conversationEventRegistry = new EventRegistry(ConversationEvents);

/**
 * Folds one event of a session's own stream into `state`: lifecycle events move `session`; erased
 * events, title and metadata changes, and types this service does not know yet change nothing.
 */
function foldSessionEvent(state: ConversationState, envelope: EventEnvelope): ConversationState {
  if (isErased(envelope) || !sessionEventRegistry.knows(envelope.eventType)) return state;
  const event = sessionLifecycleEventOf(sessionEventRegistry.parse(envelope));
  return event ? evolve(state, event) : state;
}

/**
 * The lifecycle of session `sessionId` (the `session` part of a {@link ConversationState}), read
 * strongly from the session's own stream, never from another service's read model: a session created
 * a moment ago (committed before this statement, READ COMMITTED) is always seen.
 */
export async function loadSessionLifecycle(
  sql: Sql,
  tenantId: string,
  sessionId: string,
): Promise<ConversationState> {
  const events = await new EventStoreTransaction(sql).readStream(sessionStreamId(tenantId, sessionId));
  return events.reduce(foldSessionEvent, initialState());
}

/** Event names (any version) of the session stream that decide whether a session takes turns. */
const LIFECYCLE_EVENT_NAMES = ['SessionCreated', 'SessionEnded', 'SessionExpired', 'SessionDeleted'];
/** Event names (any version) that open a turn and give it its `conversationTurn`. */
const TURN_OPENING_EVENT_NAMES = ['TurnLogged', 'TurnStarted'];

/**
 * What a conversation command needs of its conversation, read in ONE statement whatever the
 * conversation's length: the session's lifecycle events, the conversation's version (its `streams`
 * row), its last turn-opening event (the highest `conversationTurn`: numbers are given in order) and
 * every event of turn `turnId` (when the command names one). Folded with `evolve`, this is the part of
 * the full fold `decide` reads: `session`, `version`, `lastTurnNumber` and `turns[turnId]`. Erased
 * events are skipped, as in a full fold. Run it after the conversation's lock (READ COMMITTED: the
 * statement's snapshot then includes every command that held the lock before).
 */
export async function loadConversation(
  sql: Sql,
  tenantId: string,
  sessionId: string,
  turnId: string | null,
): Promise<ConversationState> {
  const sessionStream = sessionStreamId(tenantId, sessionId);
  const conversationStream = conversationStreamId(tenantId, sessionId);
  const rows = await sql.query<
    Record<string, unknown> & { part: number; conversation_version: string | null }
  >(
    `SELECT p.part, ${EVENT_COLUMNS},
            (SELECT version FROM streams WHERE stream_id = $2) AS conversation_version
     FROM (
       SELECT 0 AS part, global_position FROM events
        WHERE stream_id = $1 AND split_part(event_type, '.', 1) = ANY($4::text[])
       UNION ALL
       (SELECT 1, global_position FROM events
         WHERE stream_id = $2 AND split_part(event_type, '.', 1) = ANY($5::text[]) AND NOT metadata ? 'erased'
         ORDER BY stream_position DESC LIMIT 1)
       UNION
       SELECT 2, global_position FROM events WHERE stream_id = $2 AND $3::text IS NOT NULL AND data->>'turnId' = $3
     ) p JOIN events USING (global_position)
     ORDER BY p.part = 0 DESC, stream_position`,
    [sessionStream, conversationStream, turnId, LIFECYCLE_EVENT_NAMES, TURN_OPENING_EVENT_NAMES],
  );
  let state = initialState();
  let version = 0;
  let lastGlobal = 0;
  for (const row of rows) {
    const envelope = toEnvelope(row);
    version = Number(row.conversation_version ?? 0);
    // The last opener and the turn's own events may be the same row (UNION keeps parts apart).
    if (row.part !== 0 && envelope.globalPosition === lastGlobal) continue;
    if (row.part !== 0) lastGlobal = envelope.globalPosition;
    if (row.part === 0) state = foldSessionEvent(state, envelope);
    else if (!isErased(envelope)) state = evolve(state, conversationEventRegistry.parse(envelope));
  }
  return { ...state, version };
}

/**
 * Runs the conversation's commands. One event-store transaction per command: claim the idempotency key
 * (a retry gets the first reply), take the conversation's transaction lock, read the session's
 * lifecycle strongly ({@link loadSessionLifecycle}) and the conversation stream, fold them, `decide`,
 * append with the version read as expected version and the `turns` projection inline, read the turn
 * back and store the reply for retries.
 *
 * Numbering: `conversation_turn` is the conversation's last number + 1, so two writers must never
 * decide on the same version. The per-conversation lock (`conversation:<tenant>:<session>`) serializes
 * them, so concurrent turns queue instead of failing; the expected version is the safety net, and a
 * `STREAM.VERSION_CONFLICT` (a writer that bypassed the lock) reruns the whole transaction, at most
 * `COMMAND_ATTEMPTS` (runCommand of the event store) times.
 */
@Injectable()
export class ConversationCommandHandler {
  constructor(
    private readonly store: EventStore,
    private readonly projection: TurnsProjection,
    @Inject(CONVERSATION_CLOCK) private readonly clock: Clock,
    @Inject(USAGE_METER) private readonly meter: Meter,
  ) {}

  /**
   * The session of a turn, found through the `turns` read model (tenant-scoped; with `userId`, only
   * that user's turns). Throws TURN.NOT_FOUND for an unknown or deleted turn, or another user's.
   */
  async sessionOfTurn(
    sql: Sql,
    tenantId: string,
    turnId: string,
    userId: string | undefined,
  ): Promise<string> {
    const record = await findTurn(sql, tenantId, turnId, { userId });
    if (!record) throw new TurnNotFoundError(turnId);
    return record.view.session_id;
  }

  /**
   * A new turn of session `sessionId`: a turn id given by the client must be new in the whole tenant
   * (TURN.ALREADY_EXISTS, checked under a per-id lock so two concurrent uses cannot both pass), one
   * not given is a random UUID. Then {@link decideAndAppend}; answers the turn as written.
   */
  async logTurn(
    tx: EventStoreTransaction,
    context: CommandContext,
    input: { sessionId: string; actingUserId?: string | undefined; turn: LogTurnBody },
  ): Promise<TurnWriteReply> {
    const turnId = input.turn.turn_id ?? randomUUID();
    if (input.turn.turn_id !== undefined) {
      await tx.lock(`turn-id:${context.tenantId}:${turnId}`);
      const usedIn = await sessionOfTurnId(tx.sql, context.tenantId, turnId);
      if (usedIn !== null && usedIn !== input.sessionId) throw new TurnAlreadyExistsError(turnId);
    }
    const position = await this.decideAndAppend(tx, context, { type: 'LogTurn', data: { ...input, turnId } });
    return this.replyFor(tx, context.tenantId, turnId, position);
  }

  /**
   * Decides `command` against its conversation (and its session's lifecycle) and appends the events
   * with the `turns` projection inline. Returns the global position of the last event appended
   * (every command appends at least one). Throws the decider's DomainErrors and
   * `StreamVersionConflictError`.
   */
  async decideAndAppend(
    tx: EventStoreTransaction,
    context: CommandContext,
    command: ConversationCommand,
  ): Promise<number> {
    const sessionId = command.data.sessionId;
    const streamId = conversationStreamId(context.tenantId, sessionId);
    // The conversation's lock, and the session's stream row FOR SHARE (it cannot end or be deleted
    // before this turn commits), in one statement; the state is read in the next one.
    await tx.sql.query(
      `SELECT pg_advisory_xact_lock(hashtextextended($1, 0)),
              (SELECT version FROM streams WHERE stream_id = $2 FOR SHARE) AS session_version`,
      [streamId, sessionStreamId(context.tenantId, sessionId)],
    );
    // A LogTurn's generated turn id is new: no event to look for.
    const knownTurnId =
      command.type === 'LogTurn' && command.data.turn.turn_id === undefined ? null : command.data.turnId;
    const state = await loadConversation(tx.sql, context.tenantId, sessionId, knownTurnId);
    const events = decide(command, state, { now: this.clock(), newId: randomUUID, meter: this.meter });
    const result = await tx.append(streamId, CONVERSATION_CATEGORY, state.version, events, {
      metadata: eventMetadata(context, command.data.actingUserId ?? state.session.userId),
      inline: this.projection.inline,
    });
    return result.lastGlobalPosition;
  }

  /** A write's reply: the turn read back in the same transaction, and the write's global position. */
  async replyFor(
    tx: EventStoreTransaction,
    tenantId: string,
    turnId: string,
    position: number,
  ): Promise<TurnWriteReply> {
    const record = await findTurn(tx.sql, tenantId, turnId);
    if (!record) {
      // The row commits with every append; its absence means the read model is broken, not a user error.
      throw new Error(`turns read model has no row for ${tenantId}/${turnId} at position ${position}`);
    }
    return { turn: record.view, position };
  }
}
