import { Controller, Get, Param, Query, Req } from '@nestjs/common';
import { ApiHeader, ApiOperation, ApiResponse, ApiTags } from '@nestjs/swagger';
import type { FastifyRequest } from 'fastify';
import {
  GetGlobalStats,
  GetSessionStats,
  GetUsage,
  GetUserStats,
  type GlobalStatsView,
  type SessionStatsView,
  type UsageStatsView,
  type UserStatsView,
  usageRange,
} from '@threadline/contracts';
import { RequestClient } from '@threadline/messaging';
import { AllowUserTokens, KeysOnly } from '../auth/auth.decorators';
import { ApiProblems } from '../http/openapi';
import { SessionIdParamsDto, UserIdParamsDto } from '../sessions/sessions.dto';
import { TenantResolver } from '../tenant/tenant.provider';
import {
  GlobalStatsOutputDto,
  MinPositionQueryDto,
  SessionStatsOutputDto,
  UsageQueryDto,
  UsageStatsOutputDto,
  UserStatsOutputDto,
} from './stats.dto';

const MIN_POSITION_DOC =
  'With min_position (the `position` of a write: X-Threadline-Position), the answer waits until the ' +
  'analytics projection has applied it, at most STATS_WAIT_MS (default 3 s), else 503 SERVICE.UNAVAILABLE ' +
  'with details {min_position, as_of_position}. Every answer carries as_of_position.';

/**
 * The stats routes (issue 5), answered by the analytics-projector over NATS request/reply. Routes are
 * full paths: `/sessions/stats` is a static route, which Fastify's router (find-my-way) matches
 * before the parametric `/sessions/{session_id}` whatever the registration order.
 */
@ApiTags('stats')
@ApiHeader({
  name: 'X-Correlation-Id',
  required: false,
  description: 'Echoed on the response; generated when absent',
})
@Controller()
export class StatsController {
  constructor(
    private readonly client: RequestClient,
    private readonly tenants: TenantResolver,
  ) {}

  @Get('sessions/stats')
  @KeysOnly()
  @ApiOperation({
    summary: "The tenant's figures",
    description:
      'Sessions by status, users, turns, tokens, cost (USD), usage per agent and per model (execution time ' +
      'average and exact p95, ms), events projected and projection lag. Deleted sessions count nowhere. ' +
      MIN_POSITION_DOC,
  })
  @ApiResponse({ status: 200, type: GlobalStatsOutputDto })
  @ApiProblems(400, 503)
  async global(
    @Query() query: MinPositionQueryDto,
    @Req() request: FastifyRequest,
  ): Promise<GlobalStatsView> {
    return this.client.request(GetGlobalStats, {
      tenantId: this.tenants.tenantOf(request),
      minPosition: query.min_position,
    });
  }

  @Get('sessions/:session_id/stats')
  @AllowUserTokens()
  @ApiOperation({
    summary: "A session's summary (seed 002)",
    description:
      'interactions, total_tokens_in/out, avg_response_time_ms, duration_ms, plus p95 response time, cost, ' +
      'tool calls by status, vector cache hit rate and errors. 404 for an unknown or deleted session. ' +
      MIN_POSITION_DOC,
  })
  @ApiResponse({ status: 200, type: SessionStatsOutputDto })
  @ApiProblems(400, 404, 503)
  async session(
    @Param() params: SessionIdParamsDto,
    @Query() query: MinPositionQueryDto,
    @Req() request: FastifyRequest,
  ): Promise<SessionStatsView> {
    return this.client.request(GetSessionStats, {
      tenantId: this.tenants.tenantOf(request),
      sessionId: params.session_id,
      ...this.tenants.scopeOf(request),
      minPosition: query.min_position,
    });
  }

  @Get('users/:user_id/stats')
  @AllowUserTokens()
  @ApiOperation({
    summary: "A user's figures",
    description:
      "Sessions by status, turns, tokens, cost (USD) and last activity over the user's sessions (deleted " +
      'ones excluded); zeros for a user without sessions. ' +
      MIN_POSITION_DOC,
  })
  @ApiResponse({ status: 200, type: UserStatsOutputDto })
  @ApiProblems(400, 404, 503)
  async user(
    @Param() params: UserIdParamsDto,
    @Query() query: MinPositionQueryDto,
    @Req() request: FastifyRequest,
  ): Promise<UserStatsView> {
    const userId = this.tenants.userFor(request, params.user_id) ?? params.user_id;
    return this.client.request(GetUserStats, {
      tenantId: this.tenants.tenantOf(request),
      userId,
      minPosition: query.min_position,
    });
  }

  @Get('stats/usage')
  @AllowUserTokens()
  @ApiOperation({
    summary: 'Usage over time',
    description:
      'group_by=day (rows per UTC day and model), model or agent: turns, agent calls, tokens, cost (USD), ' +
      'execution time average and exact p95 (ms). from/to: a day (to includes it) or an ISO instant ' +
      '(to exclusive); default the last 30 days. A user token sees its own usage only. ' +
      MIN_POSITION_DOC,
  })
  @ApiResponse({ status: 200, type: UsageStatsOutputDto })
  @ApiProblems(400, 503)
  async usage(@Query() query: UsageQueryDto, @Req() request: FastifyRequest): Promise<UsageStatsView> {
    const range = usageRange(query, Date.now());
    return this.client.request(GetUsage, {
      tenantId: this.tenants.tenantOf(request),
      ...range,
      groupBy: query.group_by,
      ...this.tenants.scopeOf(request),
      minPosition: query.min_position,
    });
  }
}
