import { Body, Controller, Get, Param, Patch, Put, Query, Req, Res } from '@nestjs/common';
import { ApiBody, ApiHeader, ApiOperation, ApiResponse, ApiTags } from '@nestjs/swagger';
import type { FastifyReply, FastifyRequest } from 'fastify';
import {
  type CommandContext,
  GetSessionHistory,
  GetSessionState,
  IfMatchHeader,
  type SessionHistoryPage,
  type SessionStateView,
  type SessionStateWriteReply,
  SetToolCallStatus,
  UpdateSessionState,
} from '@threadline/contracts';
import { RequestClient } from '@threadline/messaging';
import { AllowUserTokens } from '../auth/auth.decorators';
import { POSITION_HEADER, WriteContext, type WriteMeta, ZodHeader } from '../http/headers';
import { ApiProblems } from '../http/openapi';
import { SessionIdParamsDto } from '../sessions/sessions.dto';
import { TenantResolver } from '../tenant/tenant.provider';
import {
  PutToolCallBodyDto,
  SessionHistoryPageOutputDto,
  SessionHistoryQueryDto,
  SessionStatePatchBodyDto,
  SessionStateQueryDto,
  SessionStateViewOutputDto,
  ToolCallParamsDto,
} from './state.dto';

const ETAG_DOC = { description: 'Version of the state, e.g. "3"', schema: { type: 'string' as const } };
const WRITE_HEADERS = {
  'X-Threadline-Position': {
    description: 'Global position of the last event the write appended',
    schema: { type: 'integer' as const },
  },
  ETag: ETAG_DOC,
};
const IF_MATCH_DOC = 'ETag of the state version this change is based on; 412 when stale';

/** `ETag` of a state: its version as a strong entity tag (`"3"`); `If-Match` takes it back. */
const etagOf = (state: SessionStateView): string => `"${state.version}"`;

function withWriteHeaders(reply: FastifyReply, result: SessionStateWriteReply): void {
  void reply.header(POSITION_HEADER, String(result.position)).header('etag', etagOf(result.state));
}

/**
 * `/sessions/{session_id}/state`, `/tool-calls/{name}` and `/history`: each session's workflow state
 * (seed 003: constraints, strategy, response plan, summary, status, tool calls) and its append-only
 * history. Every handler parses its input (global pipe, header decorators) before it sends one
 * command or query to the session-service over NATS; a user token only reaches its own sessions.
 */
@ApiTags('state')
@ApiHeader({
  name: 'X-Correlation-Id',
  required: false,
  description: 'Echoed on the response; generated when absent',
})
@AllowUserTokens()
@Controller('sessions/:session_id')
export class StateController {
  constructor(
    private readonly client: RequestClient,
    private readonly tenants: TenantResolver,
  ) {}

  @Get('state')
  @ApiOperation({
    summary: "A session's workflow state",
    description:
      'The current state with is_complete (every planned tool call completed) and version (also the ETag). ' +
      'version=N answers the state as it was at version N (400 past the current one); at=<ISO-8601> the ' +
      'state as it was at that time (the events stored up to that millisecond).',
  })
  @ApiResponse({ status: 200, type: SessionStateViewOutputDto, headers: { ETag: ETAG_DOC } })
  @ApiProblems(400, 404, 503)
  async get(
    @Param() params: SessionIdParamsDto,
    @Query() query: SessionStateQueryDto,
    @Req() request: FastifyRequest,
    @Res({ passthrough: true }) reply: FastifyReply,
  ): Promise<SessionStateView> {
    const state = await this.client.request(GetSessionState, {
      tenantId: this.tenants.tenantOf(request),
      sessionId: params.session_id,
      ...this.tenants.scopeOf(request),
      version: query.version,
      at: query.at,
    });
    void reply.header('etag', etagOf(state));
    return state;
  }

  @Patch('state')
  @ApiOperation({
    summary: 'Change the workflow state with a JSON merge patch (RFC 7396)',
    description:
      'Fields: constraints (JSON), strategy (text or JSON), response_plan (JSON), summary (text), status ' +
      '(text). A null value removes a field (or, nested, a key); objects merge recursively. Sent as ' +
      'application/json or application/merge-patch+json. A patch that changes nothing appends nothing. ' +
      'With If-Match, a stale version is 412.',
  })
  @ApiBody({ type: SessionStatePatchBodyDto })
  @ApiResponse({ status: 200, type: SessionStateViewOutputDto, headers: WRITE_HEADERS })
  @ApiProblems(400, 404, 412, 413, 503)
  async patch(
    @Param() params: SessionIdParamsDto,
    @Body() body: SessionStatePatchBodyDto,
    @ZodHeader('If-Match', IfMatchHeader, IF_MATCH_DOC) expectedVersion: number | undefined,
    @WriteContext() meta: WriteMeta,
    @Req() request: FastifyRequest,
    @Res({ passthrough: true }) reply: FastifyReply,
  ): Promise<SessionStateView> {
    const result = await this.client.request(UpdateSessionState, {
      context: this.context(request, meta),
      sessionId: params.session_id,
      ...this.tenants.scopeOf(request),
      patch: body,
      expectedVersion,
    });
    withWriteHeaders(reply, result);
    return result.state;
  }

  @Put('tool-calls/:name')
  @ApiOperation({
    summary: "Set a tool call's status, result and error (planning it when new)",
    description:
      'status pending|running|completed|failed; result (JSON) and error (text, only with failed) replace ' +
      'the previous ones (absent = null). description is kept from planning unless given. Answers the ' +
      'whole state. With If-Match, a stale version is 412.',
  })
  @ApiBody({ type: PutToolCallBodyDto })
  @ApiResponse({ status: 200, type: SessionStateViewOutputDto, headers: WRITE_HEADERS })
  @ApiProblems(400, 404, 412, 413, 503)
  async putToolCall(
    @Param() params: ToolCallParamsDto,
    @Body() body: PutToolCallBodyDto,
    @ZodHeader('If-Match', IfMatchHeader, IF_MATCH_DOC) expectedVersion: number | undefined,
    @WriteContext() meta: WriteMeta,
    @Req() request: FastifyRequest,
    @Res({ passthrough: true }) reply: FastifyReply,
  ): Promise<SessionStateView> {
    const result = await this.client.request(SetToolCallStatus, {
      context: this.context(request, meta),
      sessionId: params.session_id,
      ...this.tenants.scopeOf(request),
      name: params.name,
      status: body.status,
      result: body.result,
      error: body.error,
      description: body.description,
      expectedVersion,
    });
    withWriteHeaders(reply, result);
    return result.state;
  }

  @Get('history')
  @ApiOperation({
    summary: "A session's history: every event of its lifecycle and its state, oldest first",
    description:
      'Each event with its type, version (position in its stream), position (global order), time and ' +
      'data. Paged with limit (1-200, default 50) and cursor (next_cursor of the previous page).',
  })
  @ApiResponse({ status: 200, type: SessionHistoryPageOutputDto })
  @ApiProblems(400, 404, 503)
  async history(
    @Param() params: SessionIdParamsDto,
    @Query() query: SessionHistoryQueryDto,
    @Req() request: FastifyRequest,
  ): Promise<SessionHistoryPage> {
    return this.client.request(GetSessionHistory, {
      tenantId: this.tenants.tenantOf(request),
      sessionId: params.session_id,
      ...this.tenants.scopeOf(request),
      limit: query.limit,
      cursor: query.cursor,
    });
  }

  private context(request: FastifyRequest, meta: WriteMeta): CommandContext {
    return { tenantId: this.tenants.tenantOf(request), ...meta };
  }
}
