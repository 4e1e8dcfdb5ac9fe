import { Inject, Injectable, Logger, Optional } from '@nestjs/common';
import { conversationStreamId, LogTurn, type ReplyOf, type RequestOf } from '@threadline/contracts';
import {
  EventStore,
  type EventStoreTransaction,
  idempotentRequestOf,
  IdempotencyKeyReusedError,
  GroupCommitQueue,
  type Queued,
  runCommand,
} from '@threadline/event-store';
import {
  type BatchOutcome,
  ConversationCommandHandler,
  type LogTurnCommand,
} from './conversation.command-handler';
import { logTurnBatchSize } from '@threadline/platform';
import { TurnWriteReplySchema } from './turns.read-model';

type Payload = RequestOf<typeof LogTurn>;
type Reply = ReplyOf<typeof LogTurn>;

/** What a LogTurn must not share a batch with: its conversation, idempotency key and client turn id. */
function exclusiveKeysOf(payload: Payload): string[] {
  const { tenantId, idempotencyKey } = payload.context;
  const keys = [`conversation\u0000${conversationStreamId(tenantId, payload.sessionId)}`];
  if (idempotencyKey !== undefined) keys.push(`key\u0000${tenantId}\u0000${idempotencyKey}`);
  if (payload.body.turn_id !== undefined) keys.push(`turn\u0000${tenantId}\u0000${payload.body.turn_id}`);
  return keys;
}

type Pending = Queued<Payload, Reply>;

/** Token of the {@link LogTurnLimits} of the `LogTurnBatcher` (ConversationModule provides them). */
export const LOG_TURN_LIMITS = Symbol('LOG_TURN_LIMITS');

/** How much LogTurn work may wait (see `LogTurnBatcher`). */
export interface LogTurnLimits {
  /** LogTurns waiting for a batch; one more is refused at once, `SERVICE.UNAVAILABLE` (HTTP 503). */
  maxQueued: number;
  /** Longest a LogTurn waits for its batch, ms; one that waited longer is refused, never written. */
  maxWaitMs: number;
}

/**
 * The limits for a caller timeout of `requestTimeoutMs` (`REQUEST_TIMEOUT_MS`, the gateway's too): a
 * LogTurn waits at most half of it, so one that starts still has the other half to commit and answer
 * before its caller gives up; 4 full batches may wait.
 */
export function logTurnLimitsFor(requestTimeoutMs: number): LogTurnLimits {
  return { maxQueued: 4 * LogTurnBatcher.maxBatch, maxWaitMs: Math.floor(requestTimeoutMs / 2) };
}

const commandOf = (p: Payload): LogTurnCommand => ({
  context: p.context,
  sessionId: p.sessionId,
  actingUserId: p.userId,
  turn: p.body,
});

/**
 * Group commit of LogTurn commands (issue 6, scenario 1): LogTurns that arrive while earlier ones are
 * being written are written together, in ONE transaction with a fixed number of statements per batch
 * instead of about seven per command. This is group commit (Postgres's own, one level up: concurrent
 * writers share one commit and its WAL flush) on the event store's `GroupCommitQueue`, as `AppendBatcher` does for plain
 * appends; Marten likewise sends a session's pending events and projection writes as one batched
 * command, and Emmett runs inline projections in the append's transaction, as `logTurns` does.
 *
 * Statements of a batch: claim every idempotency key (and read the ones already used) when some
 * command has one; the locks and session rows, the client turn ids, the conversations, the appends
 * and the `turns` rows (`ConversationCommandHandler.logTurns`); save the replies for retries. Each
 * command keeps its own outcome, exactly as when it runs alone (`logTurnAlone`): a DomainError
 * (SESSION.NOT_FOUND, SESSION.ALREADY_ENDED, TURN.ALREADY_EXISTS, REQUEST.INVALID) refuses that command
 * only and writes nothing for it, a retry answers the first reply, a version conflict or any other
 * error of one command reruns that command alone after the batch commits, and any error of the batch
 * transaction (nothing of it is written) reruns each of its commands alone. A reply is sent only
 * after its batch committed: an acknowledged turn is never lost.
 *
 * Order: two commands of the same conversation, with the same idempotency key or the same client turn
 * id never share a batch nor run in two batches at once; the later one waits for the next batch, so a
 * conversation's commands are written in the order they arrived. At most {@link maxInFlight} batches
 * run at once, each of at most {@link maxBatch} commands.
 *
 * Load shedding ({@link LogTurnLimits}): when more LogTurns wait than the service writes in time, the
 * queue would grow and keep committing turns whose callers got a 503 timeout long ago (a client that
 * retries without an idempotency key then logs them twice). A LogTurn beyond `maxQueued` is refused at
 * once, and one that waited past `maxWaitMs` is refused when its batch would start: both with
 * `SERVICE.UNAVAILABLE` and nothing written.
 */
@Injectable()
export class LogTurnBatcher {
  /**
   * One batch at a time: the LogTurns that arrive meanwhile make the next one. Measured with the bench
   * (scenario 1, 32 users; `perf stat` of the chat-log-service and its Postgres backends over 12 s,
   * 4 runs each, alternated, load average 5-7 from other work): 1 in flight wrote 10.3-10.8 events
   * per transaction against 6.4-6.5 with 2, for 1,609-1,630K + 1,351-1,512K instructions per turn
   * (service + Postgres) against 1,675-1,777K + 1,574-1,632K, at the same turns/s (975-1,040 against
   * 874-1,107) and p99 (65-80 against 64-82 ms); 3 in flight cost more than 2. The cost: a batch that
   * waits (on a conversation lock held elsewhere) holds back every LogTurn of the service meanwhile.
   */
  static readonly maxInFlight = 1;
  /** Not reached by the bench's 32 users (batches of about 11). */
  static readonly maxBatch = 128;
  private readonly logger = new Logger(LogTurnBatcher.name);
  private readonly queue: GroupCommitQueue<Payload, Reply>;

  constructor(
    private readonly store: EventStore,
    private readonly commands: ConversationCommandHandler,
    @Optional() @Inject(LOG_TURN_LIMITS) limits: LogTurnLimits | null = null,
  ) {
    const { maxQueued, maxWaitMs } = limits ?? logTurnLimitsFor(5000);
    this.queue = new GroupCommitQueue<Payload, Reply>({
      maxInFlight: LogTurnBatcher.maxInFlight,
      maxBatch: LogTurnBatcher.maxBatch,
      keysOf: exclusiveKeysOf,
      write: (batch) => this.flush(batch),
      maxQueued,
      maxWaitMs,
    });
  }

  /** Logs a turn: answers what `logTurnAlone` answers, with the same errors, once its batch committed. */
  logTurn(payload: Payload): Promise<Reply> {
    return this.queue.push(payload);
  }

  /** The single path: one LogTurn in its own transaction (`runCommand`: key, decide, append, read back). */
  logTurnAlone(payload: Payload): Promise<Reply> {
    return runCommand(this.store, LogTurn, payload, async (tx) =>
      TurnWriteReplySchema.parse(await this.commands.logTurn(tx, payload.context, commandOf(payload))),
    );
  }

  /** Writes one batch and settles each command; reruns alone what the batch could not do. */
  private async flush(batch: readonly Pending[]): Promise<void> {
    logTurnBatchSize.observe(batch.length);
    let outcomes: BatchOutcome[];
    try {
      // Keyed plans (generic, no sequential scans): Postgres otherwise plans the lock statement and
      // loadConversations anew on every batch once its first batches were small. Measured on this path
      // alone (batches written one at a time, warm; Postgres backend instructions per turn, `perf
      // stat`): batches of 6 1.73M -> 1.51M, of 1 3.73M -> 2.49M, of 32 1.35M either way. Made on the
      // bench's new database without `enable_seqscan = off`, the lock statement's generic plan scanned
      // `streams` whole (46 of 47 executions sampled by auto_explain in one run; with it, none of 95).
      outcomes = await this.store.transaction((tx) => this.writeBatch(tx, batch), { keyedPlans: true });
    } catch (error) {
      this.logger.warn(`LogTurn batch of ${batch.length} failed, each runs alone: ${String(error)}`);
      await Promise.all(batch.map((p) => this.logTurnAlone(p.item).then(p.resolve, p.reject)));
      return;
    }
    await Promise.all(
      batch.map(async (p, i) => {
        const outcome = outcomes[i]!;
        if ('reply' in outcome) p.resolve(outcome.reply);
        else if ('error' in outcome) p.reject(outcome.error);
        else await this.logTurnAlone(p.item).then(p.resolve, p.reject);
      }),
    );
  }

  /**
   * The batch's transaction: the idempotency keys (a retry answers the first reply, a key used for
   * another request is REQUEST.INVALID), the commands (`logTurns`), then the replies saved for retries
   * and the keys of refused or rerun commands given back, as their rollback would.
   */
  private async writeBatch(tx: EventStoreTransaction, batch: readonly Pending[]): Promise<BatchOutcome[]> {
    const outcomes: (BatchOutcome | undefined)[] = batch.map(() => undefined);
    const keyed = batch.flatMap((p, k) => (p.item.context.idempotencyKey !== undefined ? [k] : []));
    /** The commands whose key this transaction claimed (the first request with it). */
    const claimed = new Set<number>();
    if (keyed.length > 0) {
      const found = await tx.claimIdempotencyKeys(
        keyed.map((k) => {
          const { context, request } = idempotentRequestOf(LogTurn, batch[k]!.item);
          return { tenantId: context.tenantId, key: context.idempotencyKey!, request };
        }),
      );
      keyed.forEach((k, j) => {
        const claim = found[j];
        if (claim === null) claimed.add(k);
        else if (claim instanceof IdempotencyKeyReusedError) outcomes[k] = { error: claim };
        else {
          const replay = LogTurn.reply.safeParse(claim?.replay);
          // An unreadable stored reply: the single path answers its error.
          outcomes[k] = replay.success ? { reply: replay.data } : { rerun: true };
        }
      });
    }

    const live = batch.flatMap((_, k) => (outcomes[k] ? [] : [k]));
    const decided =
      live.length === 0
        ? []
        : await this.commands.logTurns(
            tx,
            live.map((k) => commandOf(batch[k]!.item)),
          );
    live.forEach((k, j) => {
      const outcome = decided[j]!;
      // Parsed as the single path parses it (in the transaction: a reply that breaks it fails the batch).
      outcomes[k] = 'reply' in outcome ? { reply: TurnWriteReplySchema.parse(outcome.reply) } : outcome;
    });

    const mine = [...claimed].map((k) => ({ outcome: outcomes[k]!, context: batch[k]!.item.context }));
    const saves = mine.flatMap(({ outcome, context }) =>
      'reply' in outcome
        ? [{ tenantId: context.tenantId, key: context.idempotencyKey!, reply: outcome.reply }]
        : [],
    );
    const releases = mine.flatMap(({ outcome, context }) =>
      'reply' in outcome ? [] : [{ tenantId: context.tenantId, key: context.idempotencyKey! }],
    );
    if (saves.length + releases.length > 0) await tx.settleIdempotencyKeys(saves, releases);
    return outcomes.map((o) => o ?? { rerun: true });
  }
}
