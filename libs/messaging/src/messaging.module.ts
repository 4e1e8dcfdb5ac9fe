import {
  type DynamicModule,
  Global,
  Inject,
  Injectable,
  Module,
  type OnApplicationShutdown,
} from '@nestjs/common';
import { ClientProxyFactory, type ClientProxy, Transport } from '@nestjs/microservices';
import { ensureEventStream, JetStreamPublisher } from './event-stream';
import { connectNats, natsConnectOptions, type NatsConnection, type NatsSettings } from './nats-connection';
import { RequestClient } from './request-reply';

/** Token of the JetStream-side `NatsConnection`. */
export const NATS_CONNECTION = Symbol('NATS_CONNECTION');
const NATS_CLIENT_PROXY = Symbol('NATS_CLIENT_PROXY');

export interface MessagingModuleOptions {
  settings: NatsSettings & { NATS_SUBJECT_PREFIX: string; NATS_STREAM: string; REQUEST_TIMEOUT_MS: number };
  /** Connection name shown by the NATS server (the service name). */
  name: string;
}

@Injectable()
class NatsLifecycle implements OnApplicationShutdown {
  constructor(
    @Inject(NATS_CONNECTION) private readonly nc: NatsConnection,
    @Inject(NATS_CLIENT_PROXY) private readonly proxy: ClientProxy,
  ) {}

  async onApplicationShutdown(): Promise<void> {
    await this.proxy.close();
    if (!this.nc.isClosed()) await this.nc.drain().catch(() => this.nc.close());
  }
}

/**
 * NATS for a NestJS service: the JetStream connection (events stream ensured at start), the
 * `JetStreamPublisher` the relay uses, and the `RequestClient` for commands and queries.
 * Global: import it once.
 */
@Global()
@Module({})
export class MessagingModule {
  static forRoot(options: MessagingModuleOptions): DynamicModule {
    const s = options.settings;
    return {
      module: MessagingModule,
      providers: [
        {
          provide: NATS_CONNECTION,
          useFactory: async () => {
            const nc = await connectNats(s, options.name);
            await ensureEventStream(nc, s.NATS_STREAM, s.NATS_SUBJECT_PREFIX);
            return nc;
          },
        },
        {
          provide: JetStreamPublisher,
          useFactory: (nc: NatsConnection) =>
            new JetStreamPublisher(nc, s.NATS_SUBJECT_PREFIX, s.NATS_STREAM),
          inject: [NATS_CONNECTION],
        },
        {
          provide: NATS_CLIENT_PROXY,
          useFactory: () =>
            ClientProxyFactory.create({
              transport: Transport.NATS,
              options: natsConnectOptions(s, `${options.name}-client`),
            }),
        },
        {
          provide: RequestClient,
          useFactory: (proxy: ClientProxy) =>
            new RequestClient(proxy, s.NATS_SUBJECT_PREFIX, s.REQUEST_TIMEOUT_MS),
          inject: [NATS_CLIENT_PROXY],
        },
        NatsLifecycle,
      ],
      exports: [NATS_CONNECTION, JetStreamPublisher, RequestClient],
    };
  }
}
