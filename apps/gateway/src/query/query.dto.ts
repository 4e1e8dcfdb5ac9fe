import { createZodDto } from 'nestjs-zod';
import { AgentFailureProblem, QueryBody, QueryReply } from './query.schemas';

export class QueryBodyDto extends createZodDto(QueryBody) {}
export class QueryReplyDto extends createZodDto(QueryReply) {}
export class AgentFailureProblemDto extends createZodDto(AgentFailureProblem) {}

/** Response DTOs document the schemas' output side. */
export const QueryReplyOutputDto = QueryReplyDto.Output;
export const AgentFailureProblemOutputDto = AgentFailureProblemDto.Output;

/** DTOs whose OpenAPI components `repairNullables` checks (bodies and responses). */
export const QUERY_DTOS = [QueryBodyDto, QueryReplyOutputDto, AgentFailureProblemOutputDto] as const;
