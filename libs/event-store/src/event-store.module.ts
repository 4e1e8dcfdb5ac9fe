import {
  type InjectionToken,
  type DynamicModule,
  Global,
  Inject,
  Injectable,
  Logger,
  Module,
  Optional,
  type OnApplicationBootstrap,
  type OnApplicationShutdown,
} from '@nestjs/common';
import type { MigrationInterface } from 'typeorm';
import { errorDetails } from '@threadline/platform';
import { DeadLetters } from './dead-letters';
import { Db, type DbLogger } from './db';
import { EventStore } from './event-store';
import { eventStoreMigrations } from './migrations';
import { migrate } from './migrate';
import { type EventPublisher, Relay } from './relay';

/** Token of the `EventPublisher` the relay publishes with (provided by the messaging module). */
export const EVENT_PUBLISHER = Symbol('EVENT_PUBLISHER');
const OPTIONS = Symbol('EVENT_STORE_OPTIONS');

export interface EventStoreModuleOptions {
  url: string;
  poolSize: number;
  applicationName: string;
  /** The service's read-model migrations, run after the event store's. */
  migrations?: (new () => MigrationInterface)[];
  migrateOnStart: boolean;
  /**
   * Run the outbox relay in this process (writer services; one instance is active per database),
   * publishing with the `EventPublisher` provided under this token (messaging's `JetStreamPublisher`).
   */
  relay?: { publisher: InjectionToken };
}

/** A `DbLogger` writing through Nest's logger (context `Postgres`), so the service's pino gets it. */
export function nestDbLogger(): DbLogger {
  const logger = new Logger('Postgres');
  return { info: (message) => logger.log(message), warn: (message) => logger.warn(message) };
}

/** Starts the relay after boot and stops it before the pool closes. */
@Injectable()
class RelayLifecycle implements OnApplicationBootstrap, OnApplicationShutdown {
  private relay: Relay | undefined;

  constructor(
    @Inject(OPTIONS) private readonly options: EventStoreModuleOptions,
    private readonly db: Db,
    private readonly store: EventStore,
    @Optional() @Inject(EVENT_PUBLISHER) private readonly publisher: EventPublisher | undefined,
  ) {}

  onApplicationBootstrap(): void {
    if (!this.options.relay || !this.publisher) return;
    const logger = new Logger('Relay');
    this.relay = new Relay(this.db, this.store, this.publisher, {
      logger: {
        info: (obj, msg) => logger.log(`${msg} ${JSON.stringify(obj)}`),
        // `err` is an Error, which JSON.stringify writes as `{}`: its message and stack are logged.
        error: (obj, msg) => {
          const { err, ...rest } = obj as { err?: unknown };
          const details = errorDetails(err);
          logger.error(`${msg}: ${details.message} ${JSON.stringify(rest)}`, details.stack);
        },
      },
    });
    this.relay.start();
  }

  async onApplicationShutdown(): Promise<void> {
    await this.relay?.stop();
    await this.db.close();
  }
}

/**
 * The event store for a NestJS service: the `Db` pool (migrated at start when `migrateOnStart`),
 * the `EventStore`, `DeadLetters`, and, in writer services, the relay. Global: import it once.
 */
@Global()
@Module({})
export class EventStoreModule {
  static forRoot(options: EventStoreModuleOptions): DynamicModule {
    return {
      module: EventStoreModule,
      providers: [
        { provide: OPTIONS, useValue: options },
        {
          provide: Db,
          useFactory: async () => {
            const db = await Db.connect({
              url: options.url,
              poolSize: options.poolSize,
              applicationName: options.applicationName,
              migrations: [...eventStoreMigrations, ...(options.migrations ?? [])],
              logger: nestDbLogger(),
            });
            if (options.migrateOnStart) await migrate(db);
            return db;
          },
        },
        { provide: EventStore, useFactory: (db: Db) => new EventStore(db), inject: [Db] },
        { provide: DeadLetters, useFactory: (db: Db) => new DeadLetters(db), inject: [Db] },
        ...(options.relay ? [{ provide: EVENT_PUBLISHER, useExisting: options.relay.publisher }] : []),
        RelayLifecycle,
      ],
      exports: [Db, EventStore, DeadLetters],
    };
  }
}
