import {
  type DynamicModule,
  Inject,
  Injectable,
  Logger,
  Module,
  type OnApplicationBootstrap,
  type OnApplicationShutdown,
  Optional,
} from '@nestjs/common';
import { APP_GUARD } from '@nestjs/core';
import { Db, eventStoreMigrations, migrate, nestDbLogger } from '@threadline/event-store';
import type { GatewayConfig } from '../config';
import { ApiKeyStore } from './api-keys';
import { AuthController, USER_TOKENS } from './auth.controller';
import { AuthGuard } from './auth.guard';
import { type AuthBackend, Authenticator } from './authenticator';
import { gatewayMigrations } from './migrations';
import { RateLimiter } from './rate-limiter';
import { resolveTokenSecret, UserTokens } from './user-tokens';

/** DI token of the auth pool (null with `AUTH_MODE=none`: no database access for auth then). */
const AUTH_DB = Symbol('AUTH_DB');
const AUTH_CONFIG = Symbol('AUTH_CONFIG');
/** DI token of the rate limiter (null with `AUTH_MODE=none`). */
const RATE_LIMITER = Symbol('RATE_LIMITER');

/** Warns at every start in `AUTH_MODE=none`; at shutdown, syncs the rate limits then closes the auth pool. */
@Injectable()
class AuthLifecycle implements OnApplicationBootstrap, OnApplicationShutdown {
  constructor(
    @Inject(AUTH_CONFIG) private readonly config: GatewayConfig,
    @Optional() @Inject(AUTH_DB) private readonly db: Db | null,
    @Optional() @Inject(RATE_LIMITER) private readonly limiter: RateLimiter | null,
  ) {}

  onApplicationBootstrap(): void {
    if (this.config.AUTH_MODE === 'none') {
      new Logger('Auth').warn(
        `AUTH_MODE=none: NO AUTHENTICATION. Every request acts as an admin of tenant "${this.config.DEFAULT_TENANT_ID}". ` +
          'For local experiments only (refused when NODE_ENV=production).',
      );
    }
  }

  async onApplicationShutdown(): Promise<void> {
    await this.limiter?.close();
    await this.db?.close();
  }
}

/**
 * Authentication of the public API (issue 7): the global {@link AuthGuard}, API keys and user tokens
 * over the gateway's own tables (migrated at start when `MIGRATE_ON_START`, else by `main.js
 * migrate`), the shared rate limiter, and `POST /auth/user-tokens`.
 */
@Module({})
export class AuthModule {
  /** The gateway's migrations (`main.js migrate`, `npm run keys`). */
  static readonly migrations = gatewayMigrations;

  static forRoot(config: GatewayConfig): DynamicModule {
    const apiKeyMode = config.AUTH_MODE === 'api_key';
    return {
      module: AuthModule,
      controllers: [AuthController],
      providers: [
        { provide: AUTH_CONFIG, useValue: config },
        {
          provide: AUTH_DB,
          useFactory: async (): Promise<Db | null> => {
            if (!apiKeyMode) return null;
            const db = await Db.connect({
              url: config.DATABASE_URL,
              poolSize: config.DATABASE_POOL_SIZE,
              applicationName: 'gateway',
              migrations: [...eventStoreMigrations, ...gatewayMigrations],
              logger: nestDbLogger(),
            });
            if (config.MIGRATE_ON_START) await migrate(db);
            return db;
          },
        },
        {
          provide: USER_TOKENS,
          useFactory: async (db: Db | null): Promise<UserTokens | null> =>
            db ? new UserTokens(await resolveTokenSecret(config.AUTH_TOKEN_SECRET, db)) : null,
          inject: [AUTH_DB],
        },
        {
          provide: RATE_LIMITER,
          useFactory: (db: Db | null): RateLimiter | null =>
            db
              ? new RateLimiter(db, config.RATE_LIMIT_WINDOW_SECONDS, {
                  syncIntervalMs: config.RATE_LIMIT_SYNC_MS,
                })
              : null,
          inject: [AUTH_DB],
        },
        {
          provide: Authenticator,
          useFactory: (db: Db | null, tokens: UserTokens | null, limiter: RateLimiter | null) => {
            const backend: AuthBackend | null =
              db && tokens && limiter ? { keys: new ApiKeyStore(db), tokens, limiter } : null;
            return new Authenticator(config, backend);
          },
          inject: [AUTH_DB, USER_TOKENS, RATE_LIMITER],
        },
        { provide: APP_GUARD, useClass: AuthGuard },
        AuthLifecycle,
      ],
    };
  }
}
