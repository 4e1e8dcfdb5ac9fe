import { type DynamicModule, Module } from '@nestjs/common';
import type { NatsConnection } from '@nats-io/transport-node';
import { EventStore } from '@threadline/event-store';
import { NATS_CONNECTION } from '@threadline/messaging';
import { ErasureController } from './erasure.controller';
import { UserErasure, type UserErasureOptions } from './user-erasure';

/**
 * User erasure (`EraseUser`): purges a user's events from the event store and JetStream and their rows
 * from the read models (see {@link UserErasure}). Needs the global `EventStoreModule` and
 * `MessagingModule`; its table is migrations `Erasures1732800000000` and `ErasurePurges1732950000000` of the
 * service's migrations. Pending JetStream purges are retried at boot and every 30 s (`purgeRetryMs`).
 */
@Module({})
export class ErasureModule {
  /** `stream` and `prefix` are the events stream (`NATS_STREAM`) and subject prefix (`NATS_SUBJECT_PREFIX`). */
  static forRoot(
    jetStream: { stream: string; prefix: string },
    options: UserErasureOptions = {},
  ): DynamicModule {
    return {
      module: ErasureModule,
      controllers: [ErasureController],
      providers: [
        {
          provide: UserErasure,
          useFactory: (store: EventStore, nc: NatsConnection) =>
            new UserErasure(store, { nc, ...jetStream }, options),
          inject: [EventStore, NATS_CONNECTION],
        },
      ],
      exports: [UserErasure],
    };
  }
}
