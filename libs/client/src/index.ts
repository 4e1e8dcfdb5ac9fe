export { Threadline, type ThreadlineOptions } from './client';
export {
  AgentBackendError,
  AuthenticationError,
  BadRequestError,
  CLIENT_ERROR_CODES,
  ConflictError,
  ConnectionError,
  type FieldError,
  InternalServerError,
  NotFoundError,
  PayloadTooLargeError,
  PermissionDeniedError,
  PreconditionFailedError,
  RateLimitError,
  ServiceUnavailableError,
  ThreadlineError,
  type ThreadlineErrorInit,
  TimeoutError,
} from './errors';
export { Paginator } from './paging';
export type { Auth } from './resources/auth';
export type { ListSessionsOptions, Sessions } from './resources/sessions';
export type { HistoryOptions, State } from './resources/state';
export type { Stats } from './resources/stats';
export type { ListTurnsOptions, Turns } from './resources/turns';
export type { Users } from './resources/users';
export type { ConditionalWriteOptions, RequestOptions, WriteOptions } from './transport';
export type * from './types';
export type { components, operations, paths } from './generated/schema';
