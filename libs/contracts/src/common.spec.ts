import { exceedsDepth, JsonValue, MAX_JSON_DEPTH, Metadata } from './common';

const nested = (levels: number): unknown => {
  let value: unknown = 'leaf';
  for (let i = 0; i < levels; i += 1) value = i % 2 ? [value] : { k: value };
  return value;
};

describe('JSON depth bounds', () => {
  it('counts objects and arrays as levels', () => {
    expect(exceedsDepth('x', 0)).toBe(false);
    expect(exceedsDepth({ a: 1 }, 0)).toBe(true);
    expect(exceedsDepth(nested(3), 3)).toBe(false);
    expect(exceedsDepth(nested(4), 3)).toBe(true);
  });

  it('accepts JSON up to the limit and rejects deeper input with an issue, not a stack overflow', () => {
    expect(JsonValue.safeParse(nested(MAX_JSON_DEPTH)).success).toBe(true);
    const deep = JsonValue.safeParse(nested(MAX_JSON_DEPTH + 1));
    expect(deep.success).toBe(false);
    const hostile = JsonValue.safeParse(nested(100_000));
    expect(hostile.success).toBe(false);
    expect(hostile.error?.issues[0]?.message).toMatch(/levels deep/);
  });

  it('rejects values that are not JSON', () => {
    expect(JsonValue.safeParse({ a: undefined }).success).toBe(false);
    expect(JsonValue.safeParse(() => 1).success).toBe(false);
  });

  it('bounds metadata at 8 levels', () => {
    expect(Metadata.safeParse({ k: nested(7) }).success).toBe(true);
    expect(Metadata.safeParse({ k: nested(8) }).success).toBe(false);
  });
});
