import { type ArgumentsHost, Catch, type ExceptionFilter, Logger } from '@nestjs/common';
import type { FastifyReply, FastifyRequest } from 'fastify';
import { PROBLEM_CONTENT_TYPE, problemFor } from './problem-details';

/** `Retry-After` of every 503, seconds. */
export const SERVICE_UNAVAILABLE_RETRY_AFTER_S = 1;

/**
 * The gateway's one exception filter: every error of every route (and Fastify's body-parsing errors,
 * which Nest routes through the global filters) becomes an RFC 9457 problem body, mapped by
 * {@link problemFor}. Unexpected errors are logged with their stack (and the request id) and answered
 * with a bare 500; a 503 carries `Retry-After`.
 */
@Catch()
export class ProblemDetailsFilter implements ExceptionFilter {
  private readonly logger = new Logger('ProblemDetailsFilter');

  catch(exception: unknown, host: ArgumentsHost): void {
    const http = host.switchToHttp();
    const request = http.getRequest<FastifyRequest>();
    const reply = http.getResponse<FastifyReply>();
    const { body, unexpected } = problemFor(exception, {
      hadIfMatch: request.headers['if-match'] !== undefined,
      instance: request.url.split('?')[0] ?? request.url,
    });
    // The request id (its correlation id) ties the line to the request's access-log line.
    if (unexpected) {
      this.logger.error(
        `${request.method} ${request.url} (request ${request.id}) failed: ${exception instanceof Error ? (exception.stack ?? exception.message) : String(exception)}`,
      );
    } else if (body.status >= 500) {
      this.logger.warn(
        `${request.method} ${request.url} (request ${request.id}): ${body.code} ${body.detail}`,
      );
    }
    if (reply.sent) return;
    // A 503 is a service or the database not answering right now: tell clients when to retry (RFC 9110
    // section 10.2.3), as a 429 does. A Postgres restart takes about a second.
    if (body.status === 503) void reply.header('retry-after', String(SERVICE_UNAVAILABLE_RETRY_AFTER_S));
    void reply.status(body.status).header('content-type', PROBLEM_CONTENT_TYPE).send(body);
  }
}
