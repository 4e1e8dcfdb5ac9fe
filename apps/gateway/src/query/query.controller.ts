import { Body, Controller, Post, Req, Res } from '@nestjs/common';
import { ApiBody, ApiExtraModels, ApiHeader, ApiOperation, ApiResponse, ApiTags } from '@nestjs/swagger';
import type { FastifyReply, FastifyRequest } from 'fastify';
import { DomainError } from '@threadline/platform';
import { AllowUserTokens } from '../auth/auth.decorators';
import { POSITION_HEADER, WriteContext, type WriteMeta } from '../http/headers';
import { ApiProblems } from '../http/openapi';
import { PROBLEM_CONTENT_TYPE, problemFor } from '../http/problem-details';
import { TenantResolver } from '../tenant/tenant.provider';
import { AgentFailureProblemOutputDto, QueryBodyDto, QueryReplyOutputDto } from './query.dto';
import type { AgentFailureProblem } from './query.schemas';
import { QueryService } from './query.service';

/** `POST /query`: ask the agent within a session, and log the turn (seed 004). */
@ApiTags('query')
@ApiHeader({
  name: 'X-Correlation-Id',
  required: false,
  description: 'Echoed on the response; generated when absent',
})
@ApiExtraModels(AgentFailureProblemOutputDto)
@AllowUserTokens()
@Controller('query')
export class QueryController {
  constructor(
    private readonly queries: QueryService,
    private readonly tenants: TenantResolver,
  ) {}

  @Post()
  @ApiOperation({
    summary: 'Ask the agent, with the session as context; the turn is logged',
    description:
      'No thread_id creates a session; an unknown thread_id creates a session with that id; a session of ' +
      "another user is 404, an ended one 409. The session's latest turns are sent to the agent backend " +
      '(AGENT_BASE_URL, an OpenAI-compatible API; offline, an echo agent) and the whole turn is logged with ' +
      'its usage and latency. When the backend fails, the turn is logged as failed (the query is kept) ' +
      'and the answer is a 502 problem naming the turn_id and thread_id. With Idempotency-Key, a retry ' +
      'returns the first answer without asking the agent again.',
  })
  @ApiBody({ type: QueryBodyDto })
  @ApiResponse({
    status: 200,
    type: QueryReplyOutputDto,
    headers: {
      'X-Threadline-Position': {
        description: 'Global position of the logged turn (absent on a replay)',
        schema: { type: 'string' },
      },
    },
  })
  @ApiResponse({
    status: 502,
    description: 'The agent backend failed; the turn was logged as failed',
    content: {
      [PROBLEM_CONTENT_TYPE]: {
        schema: { $ref: `#/components/schemas/${AgentFailureProblemOutputDto.name}` },
      },
    },
  })
  @ApiProblems(400, 404, 409, 413, 503)
  async query(
    @Body() body: QueryBodyDto,
    @WriteContext() meta: WriteMeta,
    @Req() request: FastifyRequest,
    // Not passthrough: a 502 carries a problem body with extra fields, sent here, not by the filter.
    @Res() reply: FastifyReply,
  ): Promise<void> {
    // A user token asks as its own user (user_id filled in; another user's is 404).
    const asked = { ...body, user_id: this.tenants.userFor(request, body.user_id) };
    const outcome = await this.queries.query({ tenantId: this.tenants.tenantOf(request), ...meta }, asked);
    if (outcome.position !== undefined) void reply.header(POSITION_HEADER, String(outcome.position));
    if (outcome.kind === 'answered') {
      await reply.status(200).send(outcome.reply);
      return;
    }
    const { body: problem } = problemFor(new DomainError('AGENT.BACKEND_FAILED', outcome.detail), {
      hadIfMatch: false,
      instance: request.url.split('?')[0] ?? request.url,
    });
    const failure: AgentFailureProblem = {
      ...problem,
      status: 502,
      code: 'AGENT.BACKEND_FAILED',
      turn_id: outcome.turnId,
      thread_id: outcome.threadId,
    };
    await reply.status(502).header('content-type', PROBLEM_CONTENT_TYPE).send(failure);
  }
}
