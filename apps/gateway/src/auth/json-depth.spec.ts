import { assertBodyDepth, MAX_BODY_DEPTH, nestsDeeperThan } from './json-depth';

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
