import { DomainError, type ErrorCode } from '@threadline/platform';

/** What {@link answerAsReadWould} needs besides the write. */
export interface ChosenIdGuard {
  /**
   * Whether the caller is scoped to one user (a user token) and chose the id itself: only then is a
   * "taken" answer rewritten. API keys see their whole tenant, so a 409 tells them nothing new.
   */
  scoped: boolean;
  /** The code the write throws when the chosen id is taken (`SESSION.ALREADY_EXISTS`, `TURN.ALREADY_EXISTS`). */
  takenCode: ErrorCode;
  /**
   * Reads as this caller, run in order after a "taken" answer: the id itself (`GetSession`,
   * `GetTurn` scoped to the caller's user), then what the write targets (the turn's session). The
   * first one that throws (a 404 for something the caller cannot see) is the answer.
   */
  reads: readonly (() => Promise<unknown>)[];
}

/**
 * Runs `write`, a create under a client-chosen id (ids are unique per tenant). When the id is taken
 * and the caller is a user token, answers what a read of that id answers this caller: `404` (the
 * read's own problem: same code and detail as `GET /sessions/{id}` or `GET /turns/{id}`) when the id
 * belongs to another user of the tenant, to no user, or to something deleted; the original `409`
 * only when the caller can see the holder (its own session or turn). So a user token is never told
 * that an id it cannot see "already exists" (issue 7: another user's session answers 404, so its
 * existence does not leak); see the README "Security" for what remains observable.
 *
 * Throws what `write` throws, or the first read's error; never swallows a failure.
 */
export async function answerAsReadWould<T>(write: () => Promise<T>, guard: ChosenIdGuard): Promise<T> {
  try {
    return await write();
  } catch (error) {
    if (!guard.scoped || !(error instanceof DomainError) || error.code !== guard.takenCode) throw error;
    for (const read of guard.reads) await read();
    throw error;
  }
}
