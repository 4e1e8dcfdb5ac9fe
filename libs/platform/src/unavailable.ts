/**
 * SQLSTATEs that mean "the database is not there right now", not "this statement is wrong"
 * (PostgreSQL manual, Appendix A): class 08 (connection exception), 57P01 admin_shutdown, 57P02
 * crash_shutdown, 57P03 cannot_connect_now (starting up, recovering), 53300 too_many_connections,
 * 25P03 idle_in_transaction_session_timeout.
 */
const UNAVAILABLE_SQLSTATES = new Set(['57P01', '57P02', '57P03', '53300', '25P03']);

/** Node's socket errors of a server that is down or unreachable. */
const SOCKET_CODES = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'EPIPE',
  'ETIMEDOUT',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'ENOTFOUND',
  'EAI_AGAIN',
]);

/**
 * node-postgres's own errors for a connection that broke or could not be made (`pg` 8: client.js,
 * pg-pool index.js); they carry no code.
 */
const PG_CONNECTION_MESSAGES =
  /^(Connection terminated( unexpectedly| due to connection timeout)?|Client has encountered a connection error and is not queryable|Client was closed and is not queryable|timeout exceeded when trying to connect|Cannot use a pool after calling end on the pool)$/;

/**
 * True when `error` says a backing server (Postgres) is unavailable: the request may succeed when
 * retried later, and it is no fault of the request (HTTP 503, not 500; an event handler's failure
 * that must not count towards dead-lettering the event). Looks at `code` (SQLSTATE or Node socket
 * code), node-postgres's connection messages, an `AggregateError`'s errors and the `cause` chain.
 */
export function isUnavailableError(error: unknown, depth = 0): boolean {
  if (depth > 5 || typeof error !== 'object' || error === null) return false;
  const code = (error as { code?: unknown }).code;
  if (typeof code === 'string') {
    if (code.startsWith('08') && code.length === 5) return true;
    if (UNAVAILABLE_SQLSTATES.has(code) || SOCKET_CODES.has(code)) return true;
  }
  if (error instanceof Error && PG_CONNECTION_MESSAGES.test(error.message)) return true;
  if (error instanceof AggregateError && error.errors.some((e) => isUnavailableError(e, depth + 1)))
    return true;
  return error instanceof Error && isUnavailableError(error.cause, depth + 1);
}
