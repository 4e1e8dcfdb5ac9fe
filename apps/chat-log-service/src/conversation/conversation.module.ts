import { type DynamicModule, Module } from '@nestjs/common';
import { chatLogMigrations } from '../migrations';
import { loadPriceTable } from '../usage/price-table';
import { warmEncoders } from '../usage/tokenizer';
import { type Meter, UsageMeter } from '../usage/usage-meter';
import {
  type Clock,
  CONVERSATION_CLOCK,
  ConversationCommandHandler,
  USAGE_METER,
} from './conversation.command-handler';
import { ConversationController } from './conversation.controller';
import { LOG_TURN_LIMITS, LogTurnBatcher, logTurnLimitsFor } from './log-turn.batcher';
import { SessionDeletionsController } from './session-deletions.controller';
import { TurnsProjection } from './turns.projection';

/** Settings of the conversation module (from the service's config). */
export interface ConversationModuleOptions {
  /** `PRICE_TABLE_FILE`: a JSON price table replacing the shipped `usage/prices.json`. */
  priceTableFile?: string | undefined;
  /** The callers' request timeout (`REQUEST_TIMEOUT_MS`, default 5000), ms: bounds LogTurn waits. */
  requestTimeoutMs?: number | undefined;
}

/**
 * The conversation of each session: turn commands and queries over NATS, the `turns` read model
 * (written inline with each append; a deleted session's turns removed from JetStream), usage and
 * cost metering. Needs the global `EventStoreModule` (Db, EventStore). `migrations` are the read
 * model's tables, run after the event store's.
 *
 * `forRoot` loads the price table at boot: an invalid `PRICE_TABLE_FILE` throws `ConfigError` and the
 * service does not start.
 */
@Module({})
export class ConversationModule {
  static readonly migrations = chatLogMigrations;

  static forRoot(options: ConversationModuleOptions = {}): DynamicModule {
    const meter: Meter = new UsageMeter(loadPriceTable(options.priceTableFile));
    // Before the service answers its first request: building an encoder takes about a second.
    warmEncoders();
    return {
      module: ConversationModule,
      controllers: [ConversationController, SessionDeletionsController],
      providers: [
        ConversationCommandHandler,
        LogTurnBatcher,
        { provide: LOG_TURN_LIMITS, useValue: logTurnLimitsFor(options.requestTimeoutMs ?? 5000) },
        TurnsProjection,
        { provide: CONVERSATION_CLOCK, useValue: (() => new Date()) satisfies Clock },
        { provide: USAGE_METER, useValue: meter },
      ],
      exports: [TurnsProjection],
    };
  }
}
