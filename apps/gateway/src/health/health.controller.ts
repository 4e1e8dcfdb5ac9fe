import { Controller, Get, Inject, Res } from '@nestjs/common';
import { ApiOperation, ApiResponse, ApiTags } from '@nestjs/swagger';
import type { FastifyReply } from 'fastify';
import { z } from 'zod';
import { Db } from '@threadline/event-store';
import { askHealth, NATS_CONNECTION, type NatsConnection } from '@threadline/messaging';
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

/** Resolves to 'up' when `probe` succeeds within {@link HEALTH_CHECK_TIMEOUT_MS}, else 'down'. */
async function check(probe: () => Promise<unknown>): Promise<'up' | 'down'> {
  let timer: NodeJS.Timeout | undefined;
  const timedOut = new Promise<'down'>((resolve) => {
    timer = setTimeout(() => resolve('down'), HEALTH_CHECK_TIMEOUT_MS);
  });
  try {
    return await Promise.race([probe().then(() => 'up' as const), timedOut]);
  } catch {
    return 'down';
  } finally {
    clearTimeout(timer);
  }
}

/**
 * `GET /health`: readiness; 200 when Postgres and NATS answer and so does each service of
 * `HEALTH_SERVICES` (asked over NATS: an instance of it runs and reaches Postgres), else 503 naming
 * what is down. A dead service no longer leaves it 200 while every write to it fails.
 */
@ApiTags('health')
@Public()
@Controller('health')
export class HealthController {
  constructor(
    private readonly db: Db,
    @Inject(NATS_CONNECTION) private readonly nc: NatsConnection,
    @Inject(GATEWAY_CONFIG) private readonly config: GatewayConfig,
  ) {}

  @Get()
  @ApiOperation({ summary: 'Postgres, NATS and every service reachable (200) or not (503)' })
  @ApiResponse({ status: 200, type: HealthReportDto })
  @ApiResponse({ status: 503, type: HealthReportDto, description: 'A check is down' })
  async health(@Res() reply: FastifyReply): Promise<void> {
    const names = this.config.HEALTH_SERVICES;
    const [postgres, nats, ...states] = await Promise.all([
      check(() => this.db.query('SELECT 1')),
      check(() => (this.nc.isClosed() ? Promise.reject(new Error('closed')) : this.nc.rtt())),
      ...names.map((name) =>
        this.nc.isClosed()
          ? Promise.resolve('down' as const)
          : askHealth(this.nc, this.config.NATS_SUBJECT_PREFIX, name, HEALTH_CHECK_TIMEOUT_MS),
      ),
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
