import type { FastifyReply } from 'fastify';
import type { TurnView } from '@threadline/contracts';
import { POSITION_HEADER } from '../http/headers';

/** `Location` of a turn resource. */
export const turnLocationOf = (turn: TurnView): string => `/turns/${encodeURIComponent(turn.turn_id)}`;

/**
 * Sets the headers of a turn write: `X-Threadline-Position`, the global position of the last event
 * the write appended (to wait on projections with, e.g. the session's `turn_count`).
 */
export function withTurnWriteHeaders(reply: FastifyReply, result: { position: number }): void {
  void reply.header(POSITION_HEADER, String(result.position));
}
