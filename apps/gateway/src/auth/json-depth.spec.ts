import {
  assertBodyDepth,
  assertWellFormedBody,
  loneSurrogatePath,
  MAX_BODY_DEPTH,
  nestsDeeperThan,
} from './json-depth';

const nest = (depth: number): unknown => {
  let value: unknown = 1;
  for (let i = 0; i < depth; i += 1) value = i % 2 ? [value] : { a: value };
  return value;
};

describe('body depth', () => {
  it('measures nesting without recursion, at any depth', () => {
    expect(nestsDeeperThan(nest(64), 64)).toBe(false);
    expect(nestsDeeperThan(nest(65), 64)).toBe(true);
    expect(nestsDeeperThan(nest(500_000), 64)).toBe(true);
    expect(nestsDeeperThan({ a: [1, 'x', null], b: {} }, 2)).toBe(false);
    expect(nestsDeeperThan('text', 0)).toBe(false);
  });

  it('refuses a deeper body with a 400 naming the body', () => {
    expect(() => assertBodyDepth(nest(MAX_BODY_DEPTH))).not.toThrow();
    expect(() => assertBodyDepth(nest(MAX_BODY_DEPTH + 1))).toThrow(
      expect.objectContaining({ code: 'REQUEST.INVALID' }) as Error,
    );
  });
});

describe('lone surrogates', () => {
  it('finds a lone surrogate in any string or key, and accepts pairs (emoji)', () => {
    expect(loneSurrogatePath(JSON.parse('{"metadata":{"a":["ok","\\ud800"]}}'))).toBe('metadata.a[1]');
    expect(loneSurrogatePath(JSON.parse('{"t":"x\\udc00"}'))).toBe('t');
    expect(loneSurrogatePath(JSON.parse('{"\\ud83d":1}'))).toBe('\ud83d');
    expect(loneSurrogatePath({ title: 'coffee \u{1F600} ok', n: 1, list: [null, true] })).toBeUndefined();
    expect(loneSurrogatePath(JSON.parse('"\\ud83d\\ude00"'))).toBeUndefined();
  });

  it('refuses such a body with a 400 naming the field', () => {
    expect(() => assertWellFormedBody(JSON.parse('{"metadata":{"k":"\\ud800"}}'))).toThrow(
      expect.objectContaining({ code: 'REQUEST.INVALID' }) as Error,
    );
    expect(() => assertWellFormedBody({ metadata: { k: 'caf\u00e9' } })).not.toThrow();
  });
});
