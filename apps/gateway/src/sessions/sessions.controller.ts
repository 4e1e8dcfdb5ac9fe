import {
  Body,
  Controller,
  Delete,
  Get,
  Head,
  HttpCode,
  Param,
  Patch,
  Post,
  Query,
  Req,
  Res,
} from '@nestjs/common';
import { ApiBody, ApiHeader, ApiOperation, ApiResponse, ApiTags } from '@nestjs/swagger';
import type { FastifyReply, FastifyRequest } from 'fastify';
import {
  type CommandContext,
  CreateSession,
  DeleteSession,
  EndSession,
  GetSession,
  IfMatchHeader,
  ListSessions,
  type SessionPage,
  type SessionView,
  UpdateSession,
} from '@threadline/contracts';
import { RequestClient } from '@threadline/messaging';
import { AdminOnly, AllowUserTokens } from '../auth/auth.decorators';
import { answerAsReadWould } from '../auth/chosen-ids';
import { ZodHeader, WriteContext, type WriteMeta } from '../http/headers';
import { ApiProblems } from '../http/openapi';
import { TenantResolver } from '../tenant/tenant.provider';
import { locationOf, withSessionHeaders, withWriteHeaders } from './session-responses';
import {
  CreateSessionBodyDto,
  ListSessionsQueryDto,
  SessionIdParamsDto,
  SessionPageOutputDto,
  SessionViewOutputDto,
  UpdateSessionBodyDto,
} from './sessions.dto';

const WRITE_HEADERS = {
  'X-Threadline-Position': {
    description: 'Global position of the last event the write appended',
    schema: { type: 'integer' as const },
  },
  ETag: { description: 'Version of the session, e.g. "3"', schema: { type: 'string' as const } },
};

/**
 * `/sessions`: create, read, update, end and delete sessions, and the operators' list. Every handler
 * parses its input (global pipe, header decorators) before it sends one command or query over NATS;
 * errors are DomainErrors mapped to problem bodies by the global filter.
 */
@ApiTags('sessions')
@ApiHeader({
  name: 'X-Correlation-Id',
  required: false,
  description: 'Echoed on the response; generated when absent',
})
@AllowUserTokens()
@Controller('sessions')
export class SessionsController {
  constructor(
    private readonly client: RequestClient,
    private readonly tenants: TenantResolver,
  ) {}

  @Post()
  @HttpCode(201)
  @ApiOperation({
    summary: 'Create a session',
    description:
      'A given session_id that already exists is 409; with a user token, one the token cannot see ' +
      '(another user\u2019s, or deleted) is 404, as GET /sessions/{session_id} answers.',
  })
  @ApiBody({ type: CreateSessionBodyDto, required: false })
  @ApiResponse({
    status: 201,
    type: SessionViewOutputDto,
    headers: { ...WRITE_HEADERS, Location: { description: '/sessions/{session_id}' } },
  })
  @ApiProblems(400, 409, 413, 503)
  async create(
    @Body() body: CreateSessionBodyDto,
    @WriteContext() meta: WriteMeta,
    @Req() request: FastifyRequest,
    @Res({ passthrough: true }) reply: FastifyReply,
  ): Promise<SessionView> {
    const tenantId = this.tenants.tenantOf(request);
    const scope = this.tenants.scopeOf(request);
    const sessionId = body.session_id;
    const create = () =>
      this.client.request(CreateSession, {
        context: this.context(request, meta),
        sessionId,
        userId: this.tenants.userFor(request, body.user_id),
        title: body.title,
        metadata: body.metadata,
        createdFrom: body.created_from,
      });
    const result = await answerAsReadWould(create, {
      scoped: sessionId !== undefined && scope.userId !== undefined,
      takenCode: 'SESSION.ALREADY_EXISTS',
      reads:
        sessionId === undefined
          ? []
          : [() => this.client.request(GetSession, { tenantId, sessionId, ...scope })],
    });
    withWriteHeaders(reply, result);
    void reply.header('location', locationOf(result.session));
    return result.session;
  }

  @Get()
  @AdminOnly()
  @ApiOperation({ summary: "All sessions of the tenant, paged (operators' list; admin keys only)" })
  @ApiResponse({ status: 200, type: SessionPageOutputDto })
  @ApiProblems(400, 503)
  async list(@Query() query: ListSessionsQueryDto, @Req() request: FastifyRequest): Promise<SessionPage> {
    return this.client.request(ListSessions, {
      tenantId: this.tenants.tenantOf(request),
      status: query.status,
      limit: query.limit,
      cursor: query.cursor,
    });
  }

  @Get(':session_id')
  @ApiOperation({ summary: 'Get a session' })
  @ApiResponse({ status: 200, type: SessionViewOutputDto, headers: { ETag: WRITE_HEADERS.ETag } })
  @ApiProblems(400, 404, 503)
  async get(
    @Param() params: SessionIdParamsDto,
    @Req() request: FastifyRequest,
    @Res({ passthrough: true }) reply: FastifyReply,
  ): Promise<SessionView> {
    const session = await this.client.request(GetSession, {
      tenantId: this.tenants.tenantOf(request),
      sessionId: params.session_id,
      ...this.tenants.scopeOf(request),
    });
    withSessionHeaders(reply, session);
    return session;
  }

  @Head(':session_id')
  @ApiOperation({ summary: 'Does the session exist (200) or not (404); no body' })
  @ApiResponse({ status: 200, description: 'Exists', headers: { ETag: WRITE_HEADERS.ETag } })
  @ApiProblems(400, 404, 503)
  async exists(
    @Param() params: SessionIdParamsDto,
    @Req() request: FastifyRequest,
    @Res({ passthrough: true }) reply: FastifyReply,
  ): Promise<void> {
    const session = await this.client.request(GetSession, {
      tenantId: this.tenants.tenantOf(request),
      sessionId: params.session_id,
      ...this.tenants.scopeOf(request),
    });
    withSessionHeaders(reply, session);
  }

  @Patch(':session_id')
  @ApiOperation({
    summary: 'Change the title and/or merge metadata',
    description:
      'metadata is a merge patch: a null value removes the key. With If-Match, a stale version is 412.',
  })
  @ApiResponse({ status: 200, type: SessionViewOutputDto, headers: WRITE_HEADERS })
  @ApiProblems(400, 404, 409, 412, 413, 503)
  async update(
    @Param() params: SessionIdParamsDto,
    @Body() body: UpdateSessionBodyDto,
    @ZodHeader('If-Match', IfMatchHeader, 'ETag of the version this change is based on; 412 when stale')
    expectedVersion: number | undefined,
    @WriteContext() meta: WriteMeta,
    @Req() request: FastifyRequest,
    @Res({ passthrough: true }) reply: FastifyReply,
  ): Promise<SessionView> {
    const result = await this.client.request(UpdateSession, {
      context: this.context(request, meta),
      sessionId: params.session_id,
      ...this.tenants.scopeOf(request),
      title: body.title,
      metadata: body.metadata,
      expectedVersion,
    });
    withWriteHeaders(reply, result);
    return result.session;
  }

  @Post(':session_id/end')
  @HttpCode(200)
  @ApiOperation({ summary: 'End (deactivate) a session; ending an ended session changes nothing' })
  @ApiResponse({ status: 200, type: SessionViewOutputDto, headers: WRITE_HEADERS })
  @ApiProblems(400, 404, 503)
  async end(
    @Param() params: SessionIdParamsDto,
    @WriteContext() meta: WriteMeta,
    @Req() request: FastifyRequest,
    @Res({ passthrough: true }) reply: FastifyReply,
  ): Promise<SessionView> {
    const result = await this.client.request(EndSession, {
      context: this.context(request, meta),
      sessionId: params.session_id,
      ...this.tenants.scopeOf(request),
      reason: 'user',
    });
    withWriteHeaders(reply, result);
    return result.session;
  }

  @Delete(':session_id')
  @HttpCode(204)
  @ApiOperation({ summary: 'Delete a session; afterwards it is 404 everywhere' })
  @ApiResponse({
    status: 204,
    description: 'Deleted',
    headers: { 'X-Threadline-Position': WRITE_HEADERS['X-Threadline-Position'] },
  })
  @ApiProblems(400, 404, 503)
  async remove(
    @Param() params: SessionIdParamsDto,
    @WriteContext() meta: WriteMeta,
    @Req() request: FastifyRequest,
    @Res({ passthrough: true }) reply: FastifyReply,
  ): Promise<void> {
    const result = await this.client.request(DeleteSession, {
      context: this.context(request, meta),
      sessionId: params.session_id,
      ...this.tenants.scopeOf(request),
    });
    withWriteHeaders(reply, result);
  }

  private context(request: FastifyRequest, meta: WriteMeta): CommandContext {
    return { tenantId: this.tenants.tenantOf(request), ...meta };
  }
}
