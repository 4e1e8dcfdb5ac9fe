import { z, ZodError } from 'zod';
import { JsonValue } from './common';
import { defineEvent } from './define-message';
import type { EventEnvelope } from './envelope';
import { EventRegistry, UnknownEventTypeError } from './upcasters';

const GreetedV1 = defineEvent('demo', 'Greeted', 1, z.object({ name: z.string() }));
const GreetedV2 = defineEvent(
  'demo',
  'Greeted',
  2,
  z.object({ firstName: z.string(), lastName: z.string() }),
);
const LeftV1 = defineEvent('demo', 'Left', 1, z.object({ at: z.string() }));

const envelope = (eventType: string, data: unknown): EventEnvelope => ({
  eventId: '6f1c1b1e-9c1a-4c8e-8b7e-0a4b6f2d9e11',
  eventType,
  schemaVersion: Number(eventType.split('.v')[1]),
  streamId: 'demo:t:1',
  streamType: 'demo',
  streamPosition: 1,
  globalPosition: 1,
  transactionId: '1',
  data,
  metadata: { tenantId: 't' },
  createdAt: '2026-11-21T00:00:00.000Z',
});

describe('EventRegistry', () => {
  const registry = new EventRegistry(
    [GreetedV2, LeftV1],
    [
      {
        from: GreetedV1.type,
        to: GreetedV2.type,
        upcast: (data) => {
          const { name } = GreetedV1.schema.parse(data);
          const [firstName = '', lastName = ''] = name.split(' ');
          return { firstName, lastName };
        },
      },
    ],
  );

  it('parses an event of the latest version, typed by its definitions', () => {
    const event = registry.parse(envelope('Left.v1', { at: 'noon' }));
    expect(event.type).toBe('Left.v1');
    // The union narrows on `type`: this line only compiles because `data` is LeftV1's.
    if (event.type === 'Left.v1') expect(event.data.at).toBe('noon');
  });

  it('upcasts an old version so readers only see the latest', () => {
    const event = registry.parse(envelope('Greeted.v1', { name: 'Ada Lovelace' }));
    expect(event).toMatchObject({ type: 'Greeted.v2', data: { firstName: 'Ada', lastName: 'Lovelace' } });
    expect(registry.knows('Greeted.v1')).toBe(true);
  });

  it('rejects unknown types and data that breaks the contract', () => {
    expect(() => registry.parse(envelope('Nope.v1', {}))).toThrow(UnknownEventTypeError);
    expect(() => registry.parse(envelope('Left.v1', { at: 42 }))).toThrow(ZodError);
    expect(registry.knows('Nope.v1')).toBe(false);
  });

  it('answers invalid data with the very error of the schema it was defined with (it parses compiled)', () => {
    const WithJson = defineEvent(
      'demo',
      'Noted',
      1,
      z.object({ at: z.iso.datetime(), note: z.string().max(5), extra: JsonValue.nullable() }),
    );
    const noted = new EventRegistry([WithJson]);
    const errorOf = (parse: () => unknown) => {
      try {
        parse();
      } catch (error) {
        return error as ZodError;
      }
      throw new Error('parsed');
    };
    for (const data of [
      { at: 'noon', note: 'too long', extra: { n: Number.NaN } },
      { at: '2026-11-21T00:00:00Z', note: 'ok' },
      null,
    ]) {
      const fromRegistry = errorOf(() => noted.parse(envelope('Noted.v1', data)));
      const fromSchema = errorOf(() => WithJson.schema.parse(data));
      expect(fromRegistry).toBeInstanceOf(ZodError);
      expect(fromRegistry.issues).toEqual(fromSchema.issues);
      expect(fromRegistry.message).toBe(fromSchema.message);
    }
    const valid = { at: '2026-11-21T00:00:00Z', note: 'ok', extra: { a: [1, 'b'] }, dropped: 1 };
    expect(noted.parse(envelope('Noted.v1', valid)).data).toEqual(WithJson.schema.parse(valid));
  });

  it('derives type names and subjects from the definition', () => {
    expect(GreetedV2.type).toBe('Greeted.v2');
    expect(GreetedV2.subject('threadline')).toBe('threadline.evt.demo.Greeted.v2');
  });
});
