import { z } from 'zod';
import { exceedsDepth, isJsonWithin, JsonValue, MAX_JSON_DEPTH, Metadata } from './common';

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
    for (const notJson of [
      [1, undefined],
      { a: [Number.NaN] },
      Infinity,
      new Date(),
      { a: new Map() },
      1n,
      Symbol('s'),
    ])
      expect(isJsonWithin(notJson, MAX_JSON_DEPTH)).toBe(false);
    const parsed = JsonValue.safeParse({ tool: { args: [1, 'x', null, { deep: true }] }, f: () => 1 });
    expect(parsed.success).toBe(false);
    expect(parsed.error?.issues[0]?.message).toMatch(/JSON value/);
  });

  it('accepts every JSON document and passes it on unchanged', () => {
    const doc = {
      s: 'x',
      n: -1.5e3,
      b: false,
      z: null,
      a: [[], {}, [1, [2]]],
      o: { 'k.with dots': { x: 0 } },
    };
    expect(isJsonWithin(doc, 4)).toBe(true);
    expect(isJsonWithin(doc, 3)).toBe(false);
    expect(isJsonWithin(Object.create(null) as object, 1)).toBe(true);
    const parsed = JsonValue.parse(JSON.parse(JSON.stringify(doc)));
    expect(parsed).toEqual(doc);
  });

  it('bounds metadata at 8 levels', () => {
    expect(Metadata.safeParse({ k: nested(7) }).success).toBe(true);
    expect(Metadata.safeParse({ k: nested(8) }).success).toBe(false);
  });
});

describe('JsonValue in JSON Schema (the OpenAPI document and header schemas are generated from it)', () => {
  it('is representable: any value, with its description', () => {
    expect(z.toJSONSchema(z.object({ request: JsonValue }))).toMatchObject({
      properties: { request: { description: `Any JSON value, at most ${MAX_JSON_DEPTH} levels deep` } },
    });
  });
});
