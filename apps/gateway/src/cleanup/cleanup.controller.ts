import { Controller, HttpCode, Post, Req } from '@nestjs/common';
import { ApiOperation, ApiResponse, ApiTags } from '@nestjs/swagger';
import type { FastifyRequest } from 'fastify';
import { createZodDto } from 'nestjs-zod';
import { CleanupReport, RunSessionCleanup } from '@threadline/contracts';
import { RequestClient } from '@threadline/messaging';
import { AdminOnly } from '../auth/auth.decorators';
import { ApiProblems } from '../http/openapi';
import { TenantResolver } from '../tenant/tenant.provider';

class CleanupReportDto extends createZodDto(CleanupReport) {}

/**
 * `POST /sessions/cleanup` (seed 004's cleanup endpoint): runs a cleanup pass now over the caller's
 * tenant, in the cleanup-worker (`RunSessionCleanup` over NATS: the worker owns the policy and its
 * settings), and answers `{expired, deleted, took_ms}`. A static route: Fastify's router prefers it to
 * the parametric `/sessions/{session_id}` routes, and no `POST /sessions/{session_id}` exists anyway.
 * An operators' endpoint (issue 7): admin keys only; a service key or a user token is 403.
 * 503 when no cleanup-worker answers within the gateway's `REQUEST_TIMEOUT_MS`.
 */
@ApiTags('sessions')
@Controller('sessions/cleanup')
export class CleanupController {
  constructor(
    private readonly client: RequestClient,
    private readonly tenants: TenantResolver,
  ) {}

  @Post()
  @HttpCode(200)
  @AdminOnly()
  @ApiOperation({
    summary: 'Run a cleanup pass now (admin keys only)',
    description:
      'Expires the tenant’s sessions idle longer than SESSION_TIMEOUT_HOURS and deletes ended and expired ' +
      'sessions older than RETENTION_DAYS (when set). took_ms is in milliseconds.',
  })
  @ApiResponse({ status: 200, type: CleanupReportDto.Output })
  @ApiProblems(401, 403, 429, 503)
  run(@Req() request: FastifyRequest): Promise<CleanupReport> {
    return this.client.request(RunSessionCleanup, { tenantId: this.tenants.tenantOf(request) });
  }
}
