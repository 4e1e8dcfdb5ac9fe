import { Controller, Get, HttpException, Inject, Res } from '@nestjs/common';
import { ApiOperation, ApiResponse, ApiTags } from '@nestjs/swagger';
import { HealthCheckService, HealthIndicatorService } from '@nestjs/terminus';
import { jetstreamManager } from '@nats-io/jetstream';
import type { FastifyReply } from 'fastify';
import { z } from 'zod';
import { pingOf } from '@threadline/contracts';
import { Db } from '@threadline/event-store';
import { NATS_CONNECTION, type NatsConnection, RequestClient } from '@threadline/messaging';
import { createZodDto } from 'nestjs-zod';
import { Public } from '../auth/auth.decorators';
import { GATEWAY_CONFIG, type GatewayConfig } from '../config';

/** Longest a single check may take before it counts as down, in ms. */
export const HEALTH_CHECK_TIMEOUT_MS = 2000;

const CheckState = z.enum(['up', 'down']);
export const HealthReport = z.object({
  status: z.enum(['ok', 'down']),
  checks: z.object({
    postgres: CheckState,
    nats: CheckState,
    services: z
      .record(z.string(), CheckState)
      .describe('Each service of HEALTH_SERVICES: up when an instance answers and its Postgres check passes'),
  }),
});
export type HealthReport = z.infer<typeof HealthReport>;
export class HealthReportDto extends createZodDto(HealthReport) {}

/** Resolves when `probe` succeeds within {@link HEALTH_CHECK_TIMEOUT_MS}; rejects with why not. */
async function within<T>(probe: () => Promise<T>): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timedOut = new Promise<never>((_, reject) => {
    timer = setTimeout(
      () => reject(new Error(`no answer within ${HEALTH_CHECK_TIMEOUT_MS} ms`)),
      HEALTH_CHECK_TIMEOUT_MS,
    );
  });
  try {
    return await Promise.race([probe(), timedOut]);
  } finally {
    clearTimeout(timer);
  }
}

/** Resolves to 'up' when `probe` succeeds within {@link HEALTH_CHECK_TIMEOUT_MS}, else 'down'. */
async function check(probe: () => Promise<unknown>): Promise<'up' | 'down'> {
  try {
    await within(probe);
    return 'up';
  } catch {
    return 'down';
  }
}

const Indicator = z.object({ status: z.enum(['up', 'down']), message: z.string().optional() }).loose();

/**
 * The answer of `/health/ready` (`@nestjs/terminus`'s health check result): `status` `ok` or `error`,
 * `info` the checks that are up, `error` those that are down (each with a `message`), `details` all of
 * them. Checks: `postgres`, `nats`, `jetstream` (the events stream), and each backend service by name.
 */
export const ReadinessReport = z.object({
  status: z.enum(['ok', 'error', 'shutting_down']),
  info: z.record(z.string(), Indicator).optional(),
  error: z.record(z.string(), Indicator).optional(),
  details: z.record(z.string(), Indicator),
});
export type ReadinessReport = z.infer<typeof ReadinessReport>;
export class ReadinessReportDto extends createZodDto(ReadinessReport) {}

/** `GET /health/live`: `{status: 'ok'}` whenever the process answers. */
export const LiveReport = z.object({ status: z.literal('ok') });
export class LiveReportDto extends createZodDto(LiveReport) {}

/** The message of a failed probe. */
const reasonOf = (error: unknown) => (error instanceof Error ? error.message : String(error));

/**
 * `GET /health`: 200 when Postgres and NATS answer and so does each service of `HEALTH_SERVICES`
 * (its NATS ping, `pingOf`, answered and its own Postgres not `down`), else 503 naming what is down:
 * a dead service no longer leaves it 200 while every write to it fails.
 * `GET /health/live`: the process is up (200 while it can answer at all).
 * `GET /health/ready`: the whole system can serve (Postgres, NATS, the JetStream events stream, each
 * service of `HEALTH_SERVICES` by the same ping), 200, else 503 naming what is down.
 */
@ApiTags('health')
@Public()
@Controller('health')
export class HealthController {
  constructor(
    private readonly db: Db,
    @Inject(NATS_CONNECTION) private readonly nc: NatsConnection,
    private readonly requests: RequestClient,
    private readonly checks: HealthCheckService,
    private readonly indicators: HealthIndicatorService,
    @Inject(GATEWAY_CONFIG) private readonly config: GatewayConfig,
  ) {}

  /**
   * Asks `service` its health ping (`pingOf`); resolves when an instance answers and its own Postgres
   * is not `down`, rejects otherwise (no instance: `SERVICE.UNAVAILABLE` at once or at the timeout).
   */
  private async ping(service: string): Promise<void> {
    const answer = await this.requests.request(pingOf(service), {});
    if (answer.postgres === 'down') throw new Error(`${service} cannot reach its Postgres`);
  }

  @Get('live')
  @ApiOperation({ summary: 'The gateway process is up (liveness): always 200 while it answers' })
  @ApiResponse({ status: 200, type: LiveReportDto })
  async live(@Res() reply: FastifyReply): Promise<void> {
    await reply.header('cache-control', 'no-store').send(LiveReport.parse({ status: 'ok' }));
  }

  @Get('ready')
  @ApiOperation({
    summary: 'Postgres, NATS, the JetStream stream and every backend service answer (200) or not (503)',
  })
  @ApiResponse({ status: 200, type: ReadinessReportDto })
  @ApiResponse({ status: 503, type: ReadinessReportDto, description: 'A check is down (named in `error`)' })
  async ready(@Res() reply: FastifyReply): Promise<void> {
    const probe = (key: string, run: () => Promise<unknown>) => async () => {
      const indicator = this.indicators.check(key);
      try {
        await within(run);
        return indicator.up();
      } catch (error) {
        return indicator.down({ message: reasonOf(error) });
      }
    };
    let report: unknown;
    let status = 200;
    try {
      report = await this.checks.check([
        probe('postgres', () => this.db.query('SELECT 1')),
        probe('nats', () => (this.nc.isClosed() ? Promise.reject(new Error('closed')) : this.nc.rtt())),
        probe('jetstream', async () =>
          (await jetstreamManager(this.nc)).streams.info(this.config.NATS_STREAM),
        ),
        ...this.config.HEALTH_SERVICES.map((service) => probe(service, () => this.ping(service))),
      ]);
    } catch (error) {
      // Terminus throws a 503 HttpException whose response is the report naming what is down.
      if (!(error instanceof HttpException)) throw error;
      report = error.getResponse();
      status = error.getStatus();
    }
    await reply.status(status).header('cache-control', 'no-store').send(ReadinessReport.parse(report));
  }

  @Get()
  @ApiOperation({ summary: 'Postgres, NATS and every service reachable (200) or not (503)' })
  @ApiResponse({ status: 200, type: HealthReportDto })
  @ApiResponse({ status: 503, type: HealthReportDto, description: 'A check is down' })
  async health(@Res() reply: FastifyReply): Promise<void> {
    const names = this.config.HEALTH_SERVICES;
    const [postgres, nats, ...states] = await Promise.all([
      check(() => this.db.query('SELECT 1')),
      check(() => (this.nc.isClosed() ? Promise.reject(new Error('closed')) : this.nc.rtt())),
      ...names.map((name) => check(() => this.ping(name))),
    ]);
    const services = Object.fromEntries(names.map((name, i) => [name, states[i] ?? 'down']));
    const ok = postgres === 'up' && nats === 'up' && states.every((s) => s === 'up');
    const report: HealthReport = { status: ok ? 'ok' : 'down', checks: { postgres, nats, services } };
    await reply
      .status(ok ? 200 : 503)
      .header('cache-control', 'no-store')
      .send(report);
  }
}
