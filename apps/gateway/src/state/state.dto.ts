import { createZodDto } from 'nestjs-zod';
import {
  PutToolCallBody,
  SessionHistoryPage,
  SessionHistoryQuery,
  SessionStatePatchBody,
  SessionStateQuery,
  SessionStateView,
  ToolCallParams,
} from '@threadline/contracts';

// DTO classes made from the contracts' zod schemas (as sessions.dto.ts): the global pipe parses
// with them and OpenAPI documents them.

export class SessionStatePatchBodyDto extends createZodDto(SessionStatePatchBody) {}
export class SessionStateQueryDto extends createZodDto(SessionStateQuery) {}
export class ToolCallParamsDto extends createZodDto(ToolCallParams) {}
export class PutToolCallBodyDto extends createZodDto(PutToolCallBody) {}
export class SessionHistoryQueryDto extends createZodDto(SessionHistoryQuery) {}
export class SessionStateViewDto extends createZodDto(SessionStateView) {}
export class SessionHistoryPageDto extends createZodDto(SessionHistoryPage) {}

/** Response DTOs document the schemas' output side. */
export const SessionStateViewOutputDto = SessionStateViewDto.Output;
export const SessionHistoryPageOutputDto = SessionHistoryPageDto.Output;

/** DTOs whose OpenAPI components `repairNullables` checks (bodies and responses). */
export const STATE_DTOS = [
  SessionStatePatchBodyDto,
  PutToolCallBodyDto,
  SessionStateViewOutputDto,
  SessionHistoryPageOutputDto,
] as const;
