import { createZodDto } from 'nestjs-zod';
import {
  CreateSessionBody,
  CurrentSessionBody,
  ListSessionsQuery,
  ListUserSessionsQuery,
  SessionIdParams,
  SessionPage,
  SessionView,
  UpdateSessionBody,
  UserIdParams,
} from '@threadline/contracts';

// DTO classes made from the contracts' zod schemas: the global pipe parses with them and
// OpenAPI documents them, so validation and docs cannot drift apart.

export class CreateSessionBodyDto extends createZodDto(CreateSessionBody) {}
export class UpdateSessionBodyDto extends createZodDto(UpdateSessionBody) {}
export class CurrentSessionBodyDto extends createZodDto(CurrentSessionBody) {}
export class SessionIdParamsDto extends createZodDto(SessionIdParams) {}
export class UserIdParamsDto extends createZodDto(UserIdParams) {}
export class ListUserSessionsQueryDto extends createZodDto(ListUserSessionsQuery) {}
export class ListSessionsQueryDto extends createZodDto(ListSessionsQuery) {}
export class SessionViewDto extends createZodDto(SessionView) {}
export class SessionPageDto extends createZodDto(SessionPage) {}

/** Response DTOs document the schemas' output side (defaults applied, so those fields are required). */
export const SessionViewOutputDto = SessionViewDto.Output;
export const SessionPageOutputDto = SessionPageDto.Output;

/** DTOs whose OpenAPI components `repairNullables` checks (bodies and responses). */
export const SESSION_DTOS = [
  CreateSessionBodyDto,
  UpdateSessionBodyDto,
  CurrentSessionBodyDto,
  SessionViewOutputDto,
  SessionPageOutputDto,
] as const;
