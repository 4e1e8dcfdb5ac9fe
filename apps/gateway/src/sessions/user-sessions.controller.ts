import { Body, Controller, Get, Param, Post, Query, Req, Res } from '@nestjs/common';
import { ApiBody, ApiHeader, ApiOperation, ApiQuery, ApiResponse, ApiTags } from '@nestjs/swagger';
import type { FastifyReply, FastifyRequest } from 'fastify';
import {
  GetCurrentSession,
  GetOrCreateCurrentSession,
  ListUserSessions,
  type SessionPage,
  type SessionView,
} from '@threadline/contracts';
import { RequestClient } from '@threadline/messaging';
import { AllowUserTokens } from '../auth/auth.decorators';
import { WriteContext, type WriteMeta } from '../http/headers';
import { ApiProblems } from '../http/openapi';
import { TenantResolver } from '../tenant/tenant.provider';
import { MAX_METADATA_FILTERS, MetadataFilters } from './metadata-filters';
import { locationOf, withSessionHeaders, withWriteHeaders } from './session-responses';
import {
  CurrentSessionBodyDto,
  ListUserSessionsQueryDto,
  SessionPageOutputDto,
  SessionViewOutputDto,
  UserIdParamsDto,
} from './sessions.dto';

/** `/users/{user_id}/sessions`: one user's sessions, and the user's current session (get or create). */
@ApiTags('sessions')
@ApiHeader({
  name: 'X-Correlation-Id',
  required: false,
  description: 'Echoed on the response; generated when absent',
})
// User tokens: the guard answers 404 for another user's user_id, so every handler is scoped.
@AllowUserTokens()
@Controller('users/:user_id/sessions')
export class UserSessionsController {
  constructor(
    private readonly client: RequestClient,
    private readonly tenants: TenantResolver,
  ) {}

  @Get()
  @ApiOperation({ summary: "A user's sessions, paged, filtered by status and metadata" })
  @ApiQuery({
    name: 'metadata.<key>',
    required: false,
    description: `Metadata filter: sessions whose metadata.<key> equals the value (string compare); up to ${MAX_METADATA_FILTERS}`,
    schema: { type: 'string', maxLength: 1024 },
  })
  @ApiResponse({ status: 200, type: SessionPageOutputDto })
  @ApiProblems(400, 503)
  async list(
    @Param() params: UserIdParamsDto,
    @Query() query: ListUserSessionsQueryDto,
    @MetadataFilters() metadata: Record<string, string> | undefined,
    @Req() request: FastifyRequest,
  ): Promise<SessionPage> {
    return this.client.request(ListUserSessions, {
      tenantId: this.tenants.tenantOf(request),
      userId: params.user_id,
      status: query.status,
      limit: query.limit,
      cursor: query.cursor,
      sort: query.sort,
      order: query.order,
      metadata,
    });
  }

  @Get('current')
  @ApiOperation({ summary: "The user's most recent active session; 404 when none" })
  @ApiResponse({ status: 200, type: SessionViewOutputDto })
  @ApiProblems(400, 404, 503)
  async current(
    @Param() params: UserIdParamsDto,
    @Req() request: FastifyRequest,
    @Res({ passthrough: true }) reply: FastifyReply,
  ): Promise<SessionView> {
    const session = await this.client.request(GetCurrentSession, {
      tenantId: this.tenants.tenantOf(request),
      userId: params.user_id,
    });
    withSessionHeaders(reply, session);
    return session;
  }

  @Post('current')
  @ApiOperation({
    summary: "Get or create the user's current session",
    description:
      '200 with the active session, or 201 with a new one; concurrent calls for one user yield one session.',
  })
  @ApiBody({ type: CurrentSessionBodyDto, required: false })
  @ApiResponse({ status: 200, type: SessionViewOutputDto, description: 'The existing active session' })
  @ApiResponse({
    status: 201,
    type: SessionViewOutputDto,
    description: 'A new session (Location header set)',
  })
  @ApiProblems(400, 413, 503)
  async getOrCreate(
    @Param() params: UserIdParamsDto,
    @Body() body: CurrentSessionBodyDto,
    @WriteContext() meta: WriteMeta,
    @Req() request: FastifyRequest,
    // Not passthrough: the status (200 or 201) depends on the answer, and Nest would overwrite it.
    @Res() reply: FastifyReply,
  ): Promise<void> {
    const result = await this.client.request(GetOrCreateCurrentSession, {
      context: { tenantId: this.tenants.tenantOf(request), ...meta },
      userId: params.user_id,
      title: body.title,
      metadata: body.metadata,
    });
    withWriteHeaders(reply, result);
    if (result.created) void reply.header('location', locationOf(result.session));
    await reply.status(result.created ? 201 : 200).send(result.session);
  }
}
