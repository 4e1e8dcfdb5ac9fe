import { Body, Controller, Delete, Get, HttpCode, Param, Post, Query, Req, Res } from '@nestjs/common';
import { ApiBody, ApiHeader, ApiOperation, ApiResponse, ApiTags } from '@nestjs/swagger';
import type { FastifyReply, FastifyRequest } from 'fastify';
import {
  type CommandContext,
  CompleteTurn,
  DeleteTurn,
  FailTurn,
  GetSession,
  GetTurn,
  ListSessionTurns,
  ListUserTurns,
  LogTurn,
  RecordTurnResponse,
  type TurnPage,
  type TurnView,
} from '@threadline/contracts';
import { RequestClient } from '@threadline/messaging';
import { AllowUserTokens } from '../auth/auth.decorators';
import { answerAsReadWould } from '../auth/chosen-ids';
import { WriteContext, type WriteMeta } from '../http/headers';
import { ApiProblems } from '../http/openapi';
import { SessionIdParamsDto, UserIdParamsDto } from '../sessions/sessions.dto';
import { TenantResolver } from '../tenant/tenant.provider';
import { turnLocationOf, withTurnWriteHeaders } from './turn-responses';
import {
  CompleteTurnBodyDto,
  FailTurnBodyDto,
  ListSessionTurnsQueryDto,
  ListUserTurnsQueryDto,
  LogTurnBodyDto,
  TurnIdParamsDto,
  TurnPageOutputDto,
  TurnResponseBodyDto,
  TurnViewOutputDto,
} from './turns.dto';

const POSITION_DOC = {
  'X-Threadline-Position': {
    description: 'Global position of the last event this write appended',
    schema: { type: 'string' },
  },
};

const CORRELATION_DOC = {
  name: 'X-Correlation-Id',
  required: false,
  description: 'Echoed on the response; generated when absent',
};

/** The command context of a write: the request's tenant plus `Idempotency-Key` and correlation id. */
const contextOf = (tenants: TenantResolver, request: FastifyRequest, meta: WriteMeta): CommandContext => ({
  tenantId: tenants.tenantOf(request),
  ...meta,
});

/**
 * `/sessions/{session_id}/turns`: log a turn into a session's conversation, and list its turns.
 * Bodies are sent to the chat-log-service as they are (the `LogTurn` contract); it numbers the turns.
 */
@ApiTags('turns')
@ApiHeader(CORRELATION_DOC)
@AllowUserTokens()
@Controller('sessions/:session_id/turns')
export class SessionTurnsController {
  constructor(
    private readonly client: RequestClient,
    private readonly tenants: TenantResolver,
  ) {}

  @Post()
  @HttpCode(201)
  @ApiOperation({
    summary: 'Log a whole turn, or start one',
    description:
      'A whole turn (status completed or failed, with its agent responses and tool calls), or the start ' +
      'of one (status "in_progress"; responses follow on /turns/{turn_id}/responses). Usage not given is ' +
      'estimated with a tokenizer; cost comes from the price table. 404 for an unknown or deleted ' +
      'session, 409 for an ended one or a turn_id already taken; with a user token, a turn_id the token ' +
      'cannot see (another user\u2019s, or deleted) is 404, as GET /turns/{turn_id} answers.',
  })
  @ApiBody({ type: LogTurnBodyDto })
  @ApiResponse({
    status: 201,
    type: TurnViewOutputDto,
    headers: { ...POSITION_DOC, Location: { description: '/turns/{turn_id}', schema: { type: 'string' } } },
  })
  @ApiProblems(400, 404, 409, 413, 503)
  async log(
    @Param() params: SessionIdParamsDto,
    @Body() body: LogTurnBodyDto,
    @WriteContext() meta: WriteMeta,
    @Req() request: FastifyRequest,
    @Res({ passthrough: true }) reply: FastifyReply,
  ): Promise<TurnView> {
    const tenantId = this.tenants.tenantOf(request);
    const scope = this.tenants.scopeOf(request);
    const turnId = body.turn_id;
    const log = () =>
      this.client.request(LogTurn, {
        context: contextOf(this.tenants, request, meta),
        sessionId: params.session_id,
        ...scope,
        body,
      });
    // A taken turn_id is checked before the session: a user token then gets the turn's 404, or
    // (its own turn) the session's 404 when it is not its session, before the 409.
    const result = await answerAsReadWould(log, {
      scoped: turnId !== undefined && scope.userId !== undefined,
      takenCode: 'TURN.ALREADY_EXISTS',
      reads:
        turnId === undefined
          ? []
          : [
              () => this.client.request(GetTurn, { tenantId, turnId, ...scope }),
              () => this.client.request(GetSession, { tenantId, sessionId: params.session_id, ...scope }),
            ],
    });
    withTurnWriteHeaders(reply, result);
    void reply.header('location', turnLocationOf(result.turn));
    return result.turn;
  }

  @Get()
  @ApiOperation({
    summary: "A session's turns, paged",
    description:
      'Cursor paging (limit, cursor, order=asc|desc), or last=N: the N most recent turns in ascending order.',
  })
  @ApiResponse({ status: 200, type: TurnPageOutputDto })
  @ApiProblems(400, 404, 503)
  async list(
    @Param() params: SessionIdParamsDto,
    @Query() query: ListSessionTurnsQueryDto,
    @Req() request: FastifyRequest,
  ): Promise<TurnPage> {
    return this.client.request(ListSessionTurns, {
      tenantId: this.tenants.tenantOf(request),
      sessionId: params.session_id,
      ...this.tenants.scopeOf(request),
      query,
    });
  }
}

/** `/turns/{turn_id}`: one turn, its incremental logging (responses, complete, fail), and deletion. */
@ApiTags('turns')
@ApiHeader(CORRELATION_DOC)
@AllowUserTokens()
@Controller('turns/:turn_id')
export class TurnsController {
  constructor(
    private readonly client: RequestClient,
    private readonly tenants: TenantResolver,
  ) {}

  @Get()
  @ApiOperation({ summary: 'Get a turn' })
  @ApiResponse({ status: 200, type: TurnViewOutputDto })
  @ApiProblems(400, 404, 503)
  async get(@Param() params: TurnIdParamsDto, @Req() request: FastifyRequest): Promise<TurnView> {
    return this.client.request(GetTurn, {
      tenantId: this.tenants.tenantOf(request),
      turnId: params.turn_id,
      ...this.tenants.scopeOf(request),
    });
  }

  @Post('responses')
  @HttpCode(200)
  @ApiOperation({
    summary: "Append an agent's response or a tool call to an open turn",
    description:
      'Exactly one of agent_response or tool_call. A tool call with a tool_call_id already in the turn ' +
      'updates it (status, result, error). 409 when the turn is no longer in progress.',
  })
  @ApiBody({ type: TurnResponseBodyDto })
  @ApiResponse({ status: 200, type: TurnViewOutputDto, headers: POSITION_DOC })
  @ApiProblems(400, 404, 409, 413, 503)
  async respond(
    @Param() params: TurnIdParamsDto,
    @Body() body: TurnResponseBodyDto,
    @WriteContext() meta: WriteMeta,
    @Req() request: FastifyRequest,
    @Res({ passthrough: true }) reply: FastifyReply,
  ): Promise<TurnView> {
    const result = await this.client.request(RecordTurnResponse, {
      context: contextOf(this.tenants, request, meta),
      turnId: params.turn_id,
      ...this.tenants.scopeOf(request),
      body,
    });
    withTurnWriteHeaders(reply, result);
    return result.turn;
  }

  @Post('complete')
  @HttpCode(200)
  @ApiOperation({
    summary: 'Complete an open turn',
    description: '409 when the turn is no longer in progress.',
  })
  @ApiBody({ type: CompleteTurnBodyDto, required: false })
  @ApiResponse({ status: 200, type: TurnViewOutputDto, headers: POSITION_DOC })
  @ApiProblems(400, 404, 409, 413, 503)
  async complete(
    @Param() params: TurnIdParamsDto,
    @Body() body: CompleteTurnBodyDto,
    @WriteContext() meta: WriteMeta,
    @Req() request: FastifyRequest,
    @Res({ passthrough: true }) reply: FastifyReply,
  ): Promise<TurnView> {
    const result = await this.client.request(CompleteTurn, {
      context: contextOf(this.tenants, request, meta),
      turnId: params.turn_id,
      ...this.tenants.scopeOf(request),
      body,
    });
    withTurnWriteHeaders(reply, result);
    return result.turn;
  }

  @Post('fail')
  @HttpCode(200)
  @ApiOperation({
    summary: 'Fail an open turn with an error',
    description: 'What the turn holds is kept. 409 when the turn is no longer in progress.',
  })
  @ApiBody({ type: FailTurnBodyDto })
  @ApiResponse({ status: 200, type: TurnViewOutputDto, headers: POSITION_DOC })
  @ApiProblems(400, 404, 409, 413, 503)
  async fail(
    @Param() params: TurnIdParamsDto,
    @Body() body: FailTurnBodyDto,
    @WriteContext() meta: WriteMeta,
    @Req() request: FastifyRequest,
    @Res({ passthrough: true }) reply: FastifyReply,
  ): Promise<TurnView> {
    const result = await this.client.request(FailTurn, {
      context: contextOf(this.tenants, request, meta),
      turnId: params.turn_id,
      ...this.tenants.scopeOf(request),
      body,
    });
    withTurnWriteHeaders(reply, result);
    return result.turn;
  }

  @Delete()
  @HttpCode(204)
  @ApiOperation({ summary: 'Delete a turn; it is removed from every read model and is 404 afterwards' })
  @ApiResponse({ status: 204, description: 'Deleted', headers: POSITION_DOC })
  @ApiProblems(400, 404, 503)
  async remove(
    @Param() params: TurnIdParamsDto,
    @WriteContext() meta: WriteMeta,
    @Req() request: FastifyRequest,
    @Res({ passthrough: true }) reply: FastifyReply,
  ): Promise<void> {
    const result = await this.client.request(DeleteTurn, {
      context: contextOf(this.tenants, request, meta),
      turnId: params.turn_id,
      ...this.tenants.scopeOf(request),
    });
    withTurnWriteHeaders(reply, result);
  }
}

/** `/users/{user_id}/turns`: a user's recent turns across their sessions, most recent first. */
@ApiTags('turns')
@ApiHeader(CORRELATION_DOC)
// User tokens: the guard answers 404 for another user's user_id.
@AllowUserTokens()
@Controller('users/:user_id/turns')
export class UserTurnsController {
  constructor(
    private readonly client: RequestClient,
    private readonly tenants: TenantResolver,
  ) {}

  @Get()
  @ApiOperation({
    summary: "A user's recent turns across sessions",
    description:
      'Most recent first, limit (default 50). user_input= matches the input exactly; q= is a full-text ' +
      'search over inputs and responses (Postgres text search).',
  })
  @ApiResponse({ status: 200, type: TurnPageOutputDto })
  @ApiProblems(400, 503)
  async list(
    @Param() params: UserIdParamsDto,
    @Query() query: ListUserTurnsQueryDto,
    @Req() request: FastifyRequest,
  ): Promise<TurnPage> {
    return this.client.request(ListUserTurns, {
      tenantId: this.tenants.tenantOf(request),
      userId: params.user_id,
      query,
    });
  }
}
