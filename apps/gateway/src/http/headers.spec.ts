import { ValidationError } from '@threadline/platform';
import { IdempotencyKeyHeader } from '@threadline/contracts';
import { parseHeader, parseIfMatch } from './headers';

// Asymmetric matchers are `any`; typed as unknown so they fit in object literals.
const anyString: unknown = expect.any(String);

function issuesOf(fn: () => unknown): unknown {
  try {
    fn();
  } catch (error) {
    if (error instanceof ValidationError) return error.details?.['issues'];
    throw error;
  }
  throw new Error('expected a ValidationError');
}

describe('parseIfMatch', () => {
  it('is undefined when the header is absent', () => {
    expect(parseIfMatch(undefined)).toBeUndefined();
  });

  it.each([
    ['"3"', 3],
    ['3', 3],
    ['W/"12"', 12],
    ['"0"', 0],
  ])('reads %s as version %d', (raw, version) => {
    expect(parseIfMatch(raw)).toBe(version);
  });

  it.each(['*', '"a"', '"1", "2"', '', '-1', '"3" junk'])(
    'rejects %j with a 400 naming the header',
    (raw) => {
      expect(issuesOf(() => parseIfMatch(raw))).toEqual([
        { path: 'if-match', message: anyString, in: 'header' },
      ]);
    },
  );

  it('rejects a repeated header given as an array', () => {
    expect(() => parseIfMatch(['"1"', '"2"'])).toThrow(ValidationError);
  });
});

describe('parseHeader', () => {
  it('parses Idempotency-Key and rejects an over-long one', () => {
    expect(parseHeader('Idempotency-Key', IdempotencyKeyHeader, 'k-1')).toBe('k-1');
    expect(issuesOf(() => parseHeader('Idempotency-Key', IdempotencyKeyHeader, 'x'.repeat(201)))).toEqual([
      { path: 'idempotency-key', message: anyString, in: 'header' },
    ]);
  });
});
