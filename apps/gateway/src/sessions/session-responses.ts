import type { FastifyReply } from 'fastify';
import type { SessionView } from '@threadline/contracts';
import { POSITION_HEADER } from '../http/headers';

/** `ETag` of a session: its stream version as a strong entity tag (`"3"`); `If-Match` takes it back. */
export const etagOf = (session: SessionView): string => `"${session.version}"`;

/** `Location` of a session resource. */
export const locationOf = (session: SessionView): string =>
  `/sessions/${encodeURIComponent(session.session_id)}`;

/** Sets `ETag` for a session response. */
export function withSessionHeaders(reply: FastifyReply, session: SessionView): void {
  void reply.header('etag', etagOf(session));
}

/**
 * Sets the headers of a write: `X-Threadline-Position` (global position of the last event the write
 * appended, to wait on projections with) and, when the write answered with a session, its `ETag`.
 */
export function withWriteHeaders(
  reply: FastifyReply,
  result: { position: number; session?: SessionView },
): void {
  void reply.header(POSITION_HEADER, String(result.position));
  if (result.session) withSessionHeaders(reply, result.session);
}
