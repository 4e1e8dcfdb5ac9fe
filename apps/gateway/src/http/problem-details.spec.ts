import { HttpException, NotFoundException } from '@nestjs/common';
import {
  DomainError,
  ErrorCodes,
  httpStatusOf,
  StreamVersionConflictError,
  ValidationError,
} from '@threadline/platform';
import { problemFor, requestInvalid } from './problem-details';

// Asymmetric matchers are `any`; typed as unknown so they fit in object literals.
const anyString: unknown = expect.any(String);
const containing = (shape: Record<string, unknown>): unknown => expect.objectContaining(shape);

const ctx = { hadIfMatch: false, instance: '/sessions/s1' };

describe('problemFor', () => {
  it.each(ErrorCodes.filter((c) => c !== 'INTERNAL'))(
    'maps DomainError %s to httpStatusOf(code) with the code',
    (code) => {
      const { body, unexpected } = problemFor(new DomainError(code, `about ${code}`), ctx);
      expect(body).toEqual({
        type: `urn:threadline:problem:${code}`,
        title: anyString,
        status: httpStatusOf(code),
        detail: `about ${code}`,
        code,
        instance: '/sessions/s1',
      });
      expect(unexpected).toBe(false);
    },
  );

  it('gives the reason phrase as title', () => {
    expect(problemFor(new DomainError('SESSION.NOT_FOUND', 'gone'), ctx).body.title).toBe('Not Found');
    expect(problemFor(new DomainError('SESSION.ALREADY_EXISTS', 'taken'), ctx).body.title).toBe('Conflict');
  });

  it('turns a version conflict into 412 only when the request had If-Match', () => {
    const conflict = new StreamVersionConflictError('session:t:s1', 2, 3);
    expect(problemFor(conflict, { hadIfMatch: true }).body).toMatchObject({
      status: 412,
      code: 'STREAM.VERSION_CONFLICT',
    });
    expect(problemFor(conflict, { hadIfMatch: false }).body).toMatchObject({
      status: 409,
      code: 'STREAM.VERSION_CONFLICT',
    });
  });

  it('lists each bad field of a validation error, with where it was', () => {
    const error = requestInvalid('body', [
      { path: ['title'], message: 'Too big' },
      { path: ['metadata', 'color'], message: 'Invalid input' },
    ]);
    const { body } = problemFor(error, ctx);
    expect(body).toMatchObject({ status: 400, code: 'REQUEST.INVALID', detail: 'Invalid request body' });
    expect(body.errors).toEqual([
      { path: 'title', message: 'Too big', in: 'body' },
      { path: 'metadata.color', message: 'Invalid input', in: 'body' },
    ]);
  });

  it('keeps the issues of a remote REQUEST.INVALID (from the service reply details)', () => {
    const remote = new DomainError('REQUEST.INVALID', 'Invalid request payload', {
      issues: [{ path: 'userId', message: 'bad' }],
    });
    expect(problemFor(remote, ctx).body.errors).toEqual([{ path: 'userId', message: 'bad' }]);
    const plain = new ValidationError('nope', []);
    expect(problemFor(plain, ctx).body.errors).toBeUndefined();
  });

  it('maps framework HTTP errors by status', () => {
    expect(problemFor(new NotFoundException('Cannot GET /nope'), ctx).body).toMatchObject({
      status: 404,
      code: 'ROUTE.NOT_FOUND',
    });
    expect(problemFor(new HttpException('Request body is too large', 413), ctx).body).toMatchObject({
      status: 413,
      code: 'REQUEST.TOO_LARGE',
      detail: 'Request body is too large',
    });
    expect(problemFor(new HttpException('Unsupported Media Type', 415), ctx).body).toMatchObject({
      status: 415,
      code: 'REQUEST.UNSUPPORTED_MEDIA_TYPE',
    });
    expect(problemFor(new HttpException('Bad', 422), ctx).body).toMatchObject({
      status: 422,
      code: 'REQUEST.INVALID',
    });
  });

  it('maps malformed JSON (a SyntaxError with statusCode 400) to 400', () => {
    const error = Object.assign(new SyntaxError('Unexpected token } in JSON'), { statusCode: 400 });
    expect(problemFor(error, ctx)).toEqual({
      body: containing({
        status: 400,
        code: 'REQUEST.INVALID',
        detail: 'The request body is not valid JSON',
      }),
      unexpected: false,
    });
  });

  it('answers unknown errors with a bare 500 that leaks nothing', () => {
    const secret = new Error('connect ECONNREFUSED postgres://admin:hunter2@db:5432 SELECT * FROM events');
    const { body, unexpected } = problemFor(secret, ctx);
    expect(unexpected).toBe(true);
    expect(body).toEqual({
      type: 'urn:threadline:problem:INTERNAL',
      title: 'Internal Server Error',
      status: 500,
      detail: 'Internal error',
      code: 'INTERNAL',
      instance: '/sessions/s1',
    });
    expect(JSON.stringify(body)).not.toMatch(/hunter2|SELECT|ECONNREFUSED|at /);
    expect(problemFor(new HttpException('boom', 502), ctx).body).toMatchObject({
      status: 500,
      code: 'INTERNAL',
    });
    expect(problemFor('a string', ctx).body.status).toBe(500);
  });

  it('does not pass on the message of a remote INTERNAL error', () => {
    const { body, unexpected } = problemFor(
      new DomainError('INTERNAL', 'relation "sessions" does not exist'),
      ctx,
    );
    expect(body.detail).toBe('Internal error');
    expect(unexpected).toBe(true);
  });
});
