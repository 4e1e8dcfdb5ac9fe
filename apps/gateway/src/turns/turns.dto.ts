import { createZodDto } from 'nestjs-zod';
import {
  CompleteTurnBody,
  FailTurnBody,
  ListSessionTurnsQuery,
  ListUserTurnsQuery,
  LogTurnBody,
  TurnIdParams,
  TurnPage,
  TurnResponseBody,
  TurnView,
} from '@threadline/contracts';

// DTO classes made from the contracts' zod schemas (as sessions.dto.ts): the global pipe parses
// with them and OpenAPI documents them. Path params of sessions and users reuse the sessions DTOs.

export class LogTurnBodyDto extends createZodDto(LogTurnBody) {}
export class TurnResponseBodyDto extends createZodDto(TurnResponseBody) {}
export class CompleteTurnBodyDto extends createZodDto(CompleteTurnBody) {}
export class FailTurnBodyDto extends createZodDto(FailTurnBody) {}
export class TurnIdParamsDto extends createZodDto(TurnIdParams) {}
export class ListSessionTurnsQueryDto extends createZodDto(ListSessionTurnsQuery) {}
export class ListUserTurnsQueryDto extends createZodDto(ListUserTurnsQuery) {}
export class TurnViewDto extends createZodDto(TurnView) {}
export class TurnPageDto extends createZodDto(TurnPage) {}

/** Response DTOs document the schemas' output side. */
export const TurnViewOutputDto = TurnViewDto.Output;
export const TurnPageOutputDto = TurnPageDto.Output;

/** DTOs whose OpenAPI components `repairNullables` checks (bodies and responses). */
export const TURN_DTOS = [
  LogTurnBodyDto,
  TurnResponseBodyDto,
  CompleteTurnBodyDto,
  FailTurnBodyDto,
  TurnViewOutputDto,
  TurnPageOutputDto,
] as const;
