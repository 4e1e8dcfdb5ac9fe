import { createZodDto } from 'nestjs-zod';
import {
  GlobalStatsView,
  MinPositionQuery,
  SessionStatsView,
  UsageQuery,
  UsageStatsView,
  UserStatsView,
} from '@threadline/contracts';

// DTO classes made from the contracts' zod schemas (as sessions.dto.ts): the global pipe parses with
// them and OpenAPI documents them.

export class MinPositionQueryDto extends createZodDto(MinPositionQuery) {}
export class UsageQueryDto extends createZodDto(UsageQuery) {}
export class GlobalStatsViewDto extends createZodDto(GlobalStatsView) {}
export class SessionStatsViewDto extends createZodDto(SessionStatsView) {}
export class UserStatsViewDto extends createZodDto(UserStatsView) {}
export class UsageStatsViewDto extends createZodDto(UsageStatsView) {}

export const GlobalStatsOutputDto = GlobalStatsViewDto.Output;
export const SessionStatsOutputDto = SessionStatsViewDto.Output;
export const UserStatsOutputDto = UserStatsViewDto.Output;
export const UsageStatsOutputDto = UsageStatsViewDto.Output;

/** DTOs whose OpenAPI components `repairNullables` checks (responses with nullable fields). */
export const STATS_DTOS = [
  GlobalStatsOutputDto,
  SessionStatsOutputDto,
  UserStatsOutputDto,
  UsageStatsOutputDto,
] as const;
