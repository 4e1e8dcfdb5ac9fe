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
  type AppendResult,
  EVENT_COLUMNS,
  EventStore,
  EventStoreTransaction,
  eventMetadata,
  type ManyAppend,
  type Sql,
  toEnvelope,
} from '@threadline/event-store';
import { DomainError } from '@threadline/platform';
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
import { findTurn, sessionOfTurnId, sessionsOfTurnIds } from './turns.read-model';

/** A LogTurn as {@link ConversationCommandHandler.logTurns} takes it (the fields of `logTurn`'s input). */
export interface LogTurnCommand {
  context: CommandContext;
  sessionId: string;
  actingUserId?: string | undefined;
  turn: LogTurnBody;
}

/** What became of one command of a batch: its reply, its DomainError, or `rerun` (run it alone). */
export type BatchOutcome = { reply: TurnWriteReply } | { error: DomainError } | { rerun: true };

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
  const events = await new EventStoreTransaction(sql).readStream(sessionStreamId(tenantId, sessionId), {
    tenantId,
  });
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
  const [state] = await loadConversations(sql, [{ tenantId, sessionId, turnId }]);
  return state!;
}

/**
 * {@link loadConversation} for several conversations, still in ONE statement; answers in the order asked.
 * Each part selects its events' columns itself, by the `(stream_id, stream_position)` index: joined
 * back to `events` by global position instead, the plan Postgres makes while `events` is nearly empty
 * (a generic plan made at a service's start on a new database, kept while the table grows) scanned
 * all of `events` for every conversation: 9.47M instead of 1.46M Postgres instructions per turn
 * (LogTurn batches of 6 on a new database, `perf stat` of the backend).
 */
export async function loadConversations(
  sql: Sql,
  wanted: readonly { tenantId: string; sessionId: string; turnId: string | null }[],
): Promise<ConversationState[]> {
  const rows = await sql.query<
    Record<string, unknown> & { i: string; part: number; conversation_version: string | null }
  >(
    `SELECT c.i, p.*,
            (SELECT version FROM streams
              WHERE stream_id = c.conversation_stream AND tenant_id = c.tenant_id) AS conversation_version
     FROM unnest($1::text[], $2::text[], $3::text[], $6::text[])
            WITH ORDINALITY AS c(session_stream, conversation_stream, turn_id, tenant_id, i)
     CROSS JOIN LATERAL (
       SELECT 0 AS part, ${EVENT_COLUMNS} FROM events
        WHERE stream_id = c.session_stream AND tenant_id = c.tenant_id
          AND split_part(event_type, '.', 1) = ANY($4::text[])
       UNION ALL
       (SELECT 1, ${EVENT_COLUMNS} FROM events
         WHERE stream_id = c.conversation_stream AND tenant_id = c.tenant_id
           AND split_part(event_type, '.', 1) = ANY($5::text[])
           AND NOT metadata ? 'erased'
         ORDER BY stream_position DESC LIMIT 1)
       UNION ALL
       SELECT 2, ${EVENT_COLUMNS} FROM events
        WHERE stream_id = c.conversation_stream AND tenant_id = c.tenant_id
          AND c.turn_id IS NOT NULL AND data->>'turnId' = c.turn_id
     ) p
     ORDER BY c.i, p.part = 0 DESC, p.stream_position`,
    [
      wanted.map((w) => sessionStreamId(w.tenantId, w.sessionId)),
      wanted.map((w) => conversationStreamId(w.tenantId, w.sessionId)),
      wanted.map((w) => w.turnId),
      LIFECYCLE_EVENT_NAMES,
      TURN_OPENING_EVENT_NAMES,
      // Tenant-checked: another tenant's streams of the same ids (see ReadStreamOptions.tenantId) read as empty.
      wanted.map((w) => w.tenantId),
    ],
  );
  const states = wanted.map(() => initialState());
  const versions = wanted.map(() => 0);
  let lastGlobal = 0;
  for (const row of rows) {
    const i = Number(row.i) - 1;
    const envelope = toEnvelope(row);
    versions[i] = Number(row.conversation_version ?? 0);
    // The last opener and the turn's own events may be the same row (UNION keeps parts apart).
    if (row.part !== 0 && envelope.globalPosition === lastGlobal) continue;
    if (row.part !== 0) lastGlobal = envelope.globalPosition;
    if (row.part === 0) states[i] = foldSessionEvent(states[i]!, envelope);
    else if (!isErased(envelope)) states[i] = evolve(states[i]!, conversationEventRegistry.parse(envelope));
  }
  return states.map((state, i) => ({ ...state, version: versions[i]! }));
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
   * {@link logTurn} for several commands at once, in the caller's transaction, with a fixed number of
   * statements whatever their number (see `LogTurnBatcher`, which makes sure no two of them share a
   * conversation or a client-given turn id). In order:
   * 1. one statement takes every lock, in the order every batch takes them (turn-id locks sorted, then
   *    conversation locks sorted; the single path takes a turn id's before its conversation's, so no
   *    two transactions can wait on each other in a cycle), then the sessions' stream rows FOR SHARE;
   * 2. one statement checks the client-given turn ids (TURN.ALREADY_EXISTS when used in another session);
   * 3. one statement reads every conversation ({@link loadConversations}); `decide` runs on each;
   * 4. one statement appends to every conversation, each with its own expected version;
   * 5. one statement writes the new turns' rows and returns them (`TurnsProjection.openTurns`).
   * Answers, in order, each command's reply (byte for byte what {@link logTurn} answers: the row as
   * stored and the append's last global position), its DomainError (nothing written for it), or
   * `rerun` (nothing written for it; run it alone: a version conflict, or another error of its own).
   * Throws when a shared statement fails (the caller's transaction is then to be rolled back).
   */
  async logTurns(tx: EventStoreTransaction, commands: readonly LogTurnCommand[]): Promise<BatchOutcome[]> {
    const outcomes: (BatchOutcome | undefined)[] = commands.map(() => undefined);
    // Every command has an outcome by the end; `rerun` is only the default of a path that forgot one.
    const settled = () => outcomes.map((o): BatchOutcome => o ?? { rerun: true });
    const turnIds = commands.map((c) => c.turn.turn_id ?? randomUUID());
    const given = commands.flatMap((c, k) => (c.turn.turn_id !== undefined ? [k] : []));
    const sorted = (keys: string[]) => [...new Set(keys)].sort();
    const locks = [
      ...sorted(given.map((k) => `turn-id:${commands[k]!.context.tenantId}:${turnIds[k]!}`)),
      ...sorted(commands.map((c) => conversationStreamId(c.context.tenantId, c.sessionId))),
    ];
    const sessionRows = sorted(commands.map((c) => sessionStreamId(c.context.tenantId, c.sessionId)));
    await tx.sql.query(
      `WITH locked AS (SELECT count(pg_advisory_xact_lock(hashtextextended(k, 0))) AS n FROM unnest($1::text[]) AS k)
       SELECT count(*) FROM (SELECT 1 FROM streams WHERE stream_id = ANY($2::text[]) AND (SELECT n FROM locked) >= 0
                             ORDER BY stream_id FOR SHARE) s`,
      [locks, sessionRows],
    );
    if (given.length > 0) {
      const usedIn = await sessionsOfTurnIds(
        tx.sql,
        given.map((k) => ({ tenantId: commands[k]!.context.tenantId, turnId: turnIds[k]! })),
      );
      given.forEach((k, j) => {
        const session = usedIn[j] ?? null;
        if (session !== null && session !== commands[k]!.sessionId)
          outcomes[k] = { error: new TurnAlreadyExistsError(turnIds[k]!) };
      });
    }

    const live = commands.flatMap((_, k) => (outcomes[k] ? [] : [k]));
    if (live.length === 0) return settled();
    const states = await loadConversations(
      tx.sql,
      live.map((k) => ({
        tenantId: commands[k]!.context.tenantId,
        sessionId: commands[k]!.sessionId,
        turnId: commands[k]!.turn.turn_id ?? null,
      })),
    );
    const appends: { k: number; append: ManyAppend }[] = [];
    live.forEach((k, j) => {
      const { context, ...data } = commands[k]!;
      const state = states[j]!;
      try {
        const events = decide({ type: 'LogTurn', data: { ...data, turnId: turnIds[k]! } }, state, {
          now: this.clock(),
          newId: randomUUID,
          meter: this.meter,
        });
        appends.push({
          k,
          append: {
            streamId: conversationStreamId(context.tenantId, data.sessionId),
            streamType: CONVERSATION_CATEGORY,
            expected: state.version,
            events,
            opts: { metadata: eventMetadata(context, data.actingUserId ?? state.session.userId) },
          },
        });
      } catch (error) {
        outcomes[k] = error instanceof DomainError ? { error } : { rerun: true };
      }
    });
    if (appends.length === 0) return settled();

    const results = await tx.appendMany(appends.map((a) => a.append));
    const stored: { k: number; result: AppendResult }[] = [];
    appends.forEach(({ k }, j) => {
      const result = results[j];
      if (result) stored.push({ k, result });
      else outcomes[k] = { rerun: true }; // a writer that bypassed the lock: the single path retries
    });
    if (stored.length === 0) return settled();
    const records = await this.projection.openTurns(
      tx.sql,
      stored.map((s) => s.result.events),
    );
    stored.forEach(({ k, result }, j) => {
      outcomes[k] = { reply: { turn: records[j]!.view, position: result.lastGlobalPosition } };
    });
    return settled();
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
