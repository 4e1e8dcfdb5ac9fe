import type { z } from 'zod';
import { compiledSchema } from './compiled-schema';
import type { AnyEventDefinition, EventUnion } from './define-message';
import type { EventEnvelope } from './envelope';

/**
 * An upcaster turns the data of one published event version into the next version's data.
 * A published schema never changes; a new version ships with an upcaster from the previous one,
 * and readers only ever see the latest version (ARCHITECTURE.md rule 8; after
 * oskardudycz/EventSourcing.NodeJS `samples/eventsVersioning`).
 */
export interface Upcaster {
  from: string;
  to: string;
  upcast(data: unknown): unknown;
}

/** Upcasters of all published event versions. None yet: every event is still at v1. */
export const upcasters: readonly Upcaster[] = [];

/**
 * A parsed event: the latest type name, data validated by its schema, and the envelope it came in.
 * With the definitions' tuple type, a discriminated union on `type`.
 */
export type ParsedEvent<Defs extends readonly AnyEventDefinition[] = readonly AnyEventDefinition[]> =
  EventUnion<Defs> & {
    envelope: EventEnvelope;
  };

/**
 * Knows every event definition and upcaster; turns an envelope into the latest version of its event,
 * typed as the union of its definitions' events (`new EventRegistry(SessionEvents).parse(e)` switches
 * on `'SessionCreated.v1' | ...`). Throws `UnknownEventTypeError` for a type it does not know and a
 * `z.ZodError` for invalid data. Parses with each definition's schema compiled ({@link compiledSchema}).
 */
export class EventRegistry<const Defs extends readonly AnyEventDefinition[] = readonly AnyEventDefinition[]> {
  private readonly byType = new Map<string, AnyEventDefinition>();
  private readonly schemaByType = new Map<string, z.ZodType>();
  private readonly upcasterByFrom = new Map<string, Upcaster>();

  constructor(definitions: Defs, ups: readonly Upcaster[] = upcasters) {
    for (const d of definitions) {
      this.byType.set(d.type, d);
      this.schemaByType.set(d.type, compiledSchema(d.schema));
    }
    for (const u of ups) this.upcasterByFrom.set(u.from, u);
  }

  definition(type: string): AnyEventDefinition | undefined {
    return this.byType.get(type);
  }

  knows(type: string): boolean {
    return this.byType.has(type) || this.upcasterByFrom.has(type);
  }

  parse(envelope: EventEnvelope): ParsedEvent<Defs> {
    let type = envelope.eventType;
    let data = envelope.data;
    for (let up = this.upcasterByFrom.get(type); up; up = this.upcasterByFrom.get(type)) {
      data = up.upcast(data);
      type = up.to;
    }
    const schema = this.schemaByType.get(type);
    if (!schema) throw new UnknownEventTypeError(envelope.eventType);
    // The schema was looked up by this very type and the data parsed with it: the pair is one member
    // of the union, which TypeScript cannot see through a Map lookup.
    return { type, data: schema.parse(data), envelope } as ParsedEvent<Defs>;
  }
}

export class UnknownEventTypeError extends Error {
  constructor(readonly eventType: string) {
    super(`Unknown event type ${eventType}`);
    this.name = 'UnknownEventTypeError';
  }
}
