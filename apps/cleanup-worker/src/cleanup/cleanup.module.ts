import { randomUUID } from 'node:crypto';
import {
  type DynamicModule,
  Injectable,
  Logger,
  Module,
  type OnApplicationBootstrap,
  type OnApplicationShutdown,
} from '@nestjs/common';
import { Db } from '@threadline/event-store';
import { RequestClient } from '@threadline/messaging';
import type { CleanupSettings } from '../config';
import { CleanupPass } from './cleanup-pass';
import { CleanupScheduler } from './cleanup-scheduler';
import { CLEANUP_CLOCK, CleanupController } from './cleanup.controller';

const CLEANUP_SETTINGS = Symbol('CLEANUP_SETTINGS');

/** Starts the scheduler with the application and stops it (releasing the leader lock) on shutdown. */
@Injectable()
class SchedulerLifecycle implements OnApplicationBootstrap, OnApplicationShutdown {
  constructor(private readonly scheduler: CleanupScheduler) {}

  onApplicationBootstrap(): void {
    this.scheduler.start();
  }

  async onApplicationShutdown(): Promise<void> {
    await this.scheduler.stop();
  }
}

/**
 * The cleanup policies: the pass ({@link CleanupPass}), the leader's timer ({@link CleanupScheduler})
 * and the `RunSessionCleanup` handler. Needs the global `EventStoreModule` (Db, for the locks) and
 * `MessagingModule` (RequestClient, for the session-service's commands and queries).
 */
@Module({})
export class CleanupModule {
  static forRoot(settings: CleanupSettings, opts: { clock?: () => Date } = {}): DynamicModule {
    const clock = opts.clock ?? (() => new Date());
    return {
      module: CleanupModule,
      controllers: [CleanupController],
      providers: [
        { provide: CLEANUP_SETTINGS, useValue: settings },
        { provide: CLEANUP_CLOCK, useValue: clock },
        {
          provide: CleanupPass,
          useFactory: (db: Db, client: RequestClient, s: CleanupSettings) =>
            new CleanupPass(db, client, s, randomUUID().slice(0, 8)),
          inject: [Db, RequestClient, CLEANUP_SETTINGS],
        },
        {
          provide: CleanupScheduler,
          useFactory: (db: Db, pass: CleanupPass, s: CleanupSettings, now: () => Date) => {
            const logger = new Logger(CleanupScheduler.name);
            return new CleanupScheduler(db, pass, {
              intervalMs: s.intervalMs,
              clock: now,
              logger: { log: (m) => logger.log(m), error: (m, e) => logger.error(m, e) },
            });
          },
          inject: [Db, CleanupPass, CLEANUP_SETTINGS, CLEANUP_CLOCK],
        },
        SchedulerLifecycle,
      ],
      exports: [CleanupPass, CleanupScheduler],
    };
  }
}
