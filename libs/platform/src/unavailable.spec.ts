import { isUnavailableError } from './unavailable';

describe('isUnavailableError', () => {
  const withCode = (message: string, code: string) => Object.assign(new Error(message), { code });

  it('recognises a database that is down, starting or gone', () => {
    expect(isUnavailableError(new Error('Connection terminated unexpectedly'))).toBe(true);
    expect(isUnavailableError(withCode('connect ECONNREFUSED 127.0.0.1:5432', 'ECONNREFUSED'))).toBe(true);
    expect(isUnavailableError(withCode('the database system is starting up', '57P03'))).toBe(true);
    expect(isUnavailableError(withCode('terminating connection due to administrator command', '57P01'))).toBe(
      true,
    );
    expect(isUnavailableError(withCode('connection failure', '08006'))).toBe(true);
    expect(isUnavailableError(new AggregateError([withCode('x', 'ECONNREFUSED')]))).toBe(true);
    expect(isUnavailableError(new Error('wrapped', { cause: new Error('Connection terminated') }))).toBe(true);
  });

  it('does not excuse a statement that is wrong', () => {
    expect(isUnavailableError(withCode('duplicate key value violates unique constraint', '23505'))).toBe(false);
    expect(isUnavailableError(withCode('syntax error', '42601'))).toBe(false);
    expect(isUnavailableError(new Error('boom'))).toBe(false);
    expect(isUnavailableError({ code: '0800' })).toBe(false);
    expect(isUnavailableError(undefined)).toBe(false);
  });
});
