import { z } from 'zod';
import { CommandContext, SessionId, TenantId, UserId } from '../common';
import { defineCommand, defineQuery } from '../define-message';
import { TurnId } from './conversation.events';
import {
  CompleteTurnBody,
  FailTurnBody,
  ListSessionTurnsQuery,
  ListUserTurnsQuery,
  LogTurnBody,
  TurnPage,
  TurnResponseBody,
  TurnView,
  TurnWriteReply,
} from './turns.http';

/** Commands carry the HTTP body as sent (snake_case); the chat-log-service maps it to events. */
const scope = { userId: UserId.optional().describe('When set, the caller is scoped to this user') };

export const LogTurn = defineCommand(
  'conversation',
  'LogTurn',
  z.object({ context: CommandContext, sessionId: SessionId, ...scope, body: LogTurnBody }),
  TurnWriteReply,
);
export const RecordTurnResponse = defineCommand(
  'conversation',
  'RecordTurnResponse',
  z.object({ context: CommandContext, turnId: TurnId, ...scope, body: TurnResponseBody }),
  TurnWriteReply,
);
export const CompleteTurn = defineCommand(
  'conversation',
  'CompleteTurn',
  z.object({ context: CommandContext, turnId: TurnId, ...scope, body: CompleteTurnBody }),
  TurnWriteReply,
);
export const FailTurn = defineCommand(
  'conversation',
  'FailTurn',
  z.object({ context: CommandContext, turnId: TurnId, ...scope, body: FailTurnBody }),
  TurnWriteReply,
);
export const DeleteTurn = defineCommand(
  'conversation',
  'DeleteTurn',
  z.object({ context: CommandContext, turnId: TurnId, ...scope }),
  z.object({ position: z.number().int() }),
);

export const GetTurn = defineQuery(
  'conversation',
  'GetTurn',
  z.object({ tenantId: TenantId, turnId: TurnId, ...scope }),
  TurnView,
);
export const ListSessionTurns = defineQuery(
  'conversation',
  'ListSessionTurns',
  z.object({ tenantId: TenantId, sessionId: SessionId, ...scope, query: ListSessionTurnsQuery }),
  TurnPage,
);
export const ListUserTurns = defineQuery(
  'conversation',
  'ListUserTurns',
  z.object({ tenantId: TenantId, userId: UserId, query: ListUserTurnsQuery }),
  TurnPage,
);
