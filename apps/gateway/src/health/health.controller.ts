import { Controller, Get, Inject, Res } from '@nestjs/common';
import { ApiOperation, ApiResponse, ApiTags } from '@nestjs/swagger';
import type { FastifyReply } from 'fastify';
import { z } from 'zod';
import { Db } from '@threadline/event-store';
import { NATS_CONNECTION, type NatsConnection } from '@threadline/messaging';
import { createZodDto } from 'nestjs-zod';
import { Public } from '../auth/auth.decorators';

/** Longest a single check may take before it counts as down, in ms. */
export const HEALTH_CHECK_TIMEOUT_MS = 2000;

const CheckState = z.enum(['up', 'down']);
export const HealthReport = z.object({
  status: z.enum(['ok', 'down']),
  checks: z.object({ postgres: CheckState, nats: CheckState }),
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

/** `GET /health`: liveness and readiness; 200 when Postgres and NATS answer, else 503 naming the one down. */
@ApiTags('health')
@Public()
@Controller('health')
export class HealthController {
  constructor(
    private readonly db: Db,
    @Inject(NATS_CONNECTION) private readonly nc: NatsConnection,
  ) {}

  @Get()
  @ApiOperation({ summary: 'Postgres and NATS reachable (200) or not (503)' })
  @ApiResponse({ status: 200, type: HealthReportDto })
  @ApiResponse({ status: 503, type: HealthReportDto, description: 'A check is down' })
  async health(@Res() reply: FastifyReply): Promise<void> {
    const [postgres, nats] = await Promise.all([
      check(() => this.db.query('SELECT 1')),
      check(() => (this.nc.isClosed() ? Promise.reject(new Error('closed')) : this.nc.rtt())),
    ]);
    const ok = postgres === 'up' && nats === 'up';
    const report: HealthReport = { status: ok ? 'ok' : 'down', checks: { postgres, nats } };
    await reply
      .status(ok ? 200 : 503)
      .header('cache-control', 'no-store')
      .send(report);
  }
}
