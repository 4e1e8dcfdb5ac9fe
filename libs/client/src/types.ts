import type { components, operations } from './generated/schema';

// Names for the generated types of openapi.json (`generated/schema.ts`, never edited by hand). Bodies and
// answers keep the API's snake_case field names, as the API documents them.

type Schemas = components['schemas'];
type QueryOf<O extends keyof operations> = NonNullable<operations[O]['parameters']['query']>;

/** A session as the API answers it (`version` is what `ifMatch` takes). */
export type Session = Schemas['SessionViewDto_Output'];
export type SessionPage = Schemas['SessionPageDto_Output'];
export type CreateSessionInput = Schemas['CreateSessionBodyDto'];
export type UpdateSessionInput = Schemas['UpdateSessionBodyDto'];
export type CurrentSessionInput = Schemas['CurrentSessionBodyDto'];
export type SessionStatus = Session['status'];

/** A turn: the user input, each agent's response, tool calls, token usage, cost (USD) and latency (ms). */
export type Turn = Schemas['TurnViewDto_Output'];
export type TurnPage = Schemas['TurnPageDto_Output'];
export type LogTurnInput = Schemas['LogTurnBodyDto'];
/** One agent response of a turn as written (`LogTurnInput.agent_responses` items). */
export type AgentResponseInput = NonNullable<LogTurnInput['agent_responses']>[number];
/** One tool call of a turn as written (`LogTurnInput.tool_calls` items). */
export type ToolCallInput = NonNullable<LogTurnInput['tool_calls']>[number];
/** Body of `POST /turns/{turn_id}/responses`: an agent response and/or a tool call. */
export type TurnResponseInput = Schemas['TurnResponseBodyDto'];
export type CompleteTurnInput = Schemas['CompleteTurnBodyDto'];
export type FailTurnInput = Schemas['FailTurnBodyDto'];

export type SessionState = Schemas['SessionStateViewDto_Output'];
export type SessionStatePatch = Schemas['SessionStatePatchBodyDto'];
export type PutToolCallInput = Schemas['PutToolCallBodyDto'];
export type SessionHistoryPage = Schemas['SessionHistoryPageDto_Output'];
export type SessionHistoryEvent = SessionHistoryPage['events'][number];

export type QueryInput = Schemas['QueryBodyDto'];
export type QueryReply = Schemas['QueryReplyDto_Output'];
/** The body of a 502 from `/query` (the failed turn is logged: `turn_id`, `thread_id`). */
export type AgentFailureProblem = Schemas['AgentFailureProblemDto_Output'];

export type GlobalStats = Schemas['GlobalStatsViewDto_Output'];
export type SessionStats = Schemas['SessionStatsViewDto_Output'];
export type UserStats = Schemas['UserStatsViewDto_Output'];
export type UsageStats = Schemas['UsageStatsViewDto_Output'];
export type CleanupReport = Schemas['CleanupReportDto_Output'];
export type UserErasureReceipt = Schemas['UserErasureReceiptDto_Output'];
export type UserTokenInput = Schemas['UserTokenBodyDto'];
export type UserToken = Schemas['UserTokenReplyDto_Output'];
export type HealthReport = Schemas['HealthReportDto'];
export type ReadinessReport = Schemas['ReadinessReportDto'];
export type LiveReport = Schemas['LiveReportDto'];
/** An RFC 9457 problem body as the API sends it. */
export type Problem = Schemas['ProblemDetailsDto'];

/** Query of `GET /sessions` (every session of the tenant; admin keys). */
export type ListAllSessionsQuery = QueryOf<'SessionsController_list'>;
/** Query of `GET /users/{user_id}/sessions`, with the metadata filters as one object. */
export type ListUserSessionsQuery = Omit<QueryOf<'UserSessionsController_list'>, 'metadata.<key>'> & {
  /** Sessions whose `metadata[key]` equals the value (string compare); at most 16 keys. */
  metadata?: Record<string, string>;
};
export type ListTurnsQuery = Omit<QueryOf<'SessionTurnsController_list'>, 'cursor'>;
export type UserTurnsQuery = QueryOf<'UserTurnsController_list'>;
export type StateQuery = QueryOf<'StateController_get'>;
export type HistoryQuery = Omit<QueryOf<'StateController_history'>, 'cursor'>;
export type UsageQuery = QueryOf<'StatsController_usage'>;
/** `min_position`: wait (bounded) until the read includes this global position; 503 when it does not in time. */
export type StatsQuery = QueryOf<'StatsController_global'>;
