import type { z } from 'zod';
import type { EventDefinition } from './define-message';
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

type AnyEventDefinition = EventDefinition<string, z.ZodType>;

/** A parsed event: the latest type name, data validated by its schema, and the envelope it came in. */
export interface ParsedEvent<D extends AnyEventDefinition = AnyEventDefinition> {
  type: D['type'];
  data: z.infer<D['schema']>;
  envelope: EventEnvelope;
}

/**
 * Knows every event definition and upcaster; turns an envelope into the latest version of its event.
 * Throws `UnknownEventTypeError` for a type it does not know and a `z.ZodError` for invalid data.
 */
export class EventRegistry {
  private readonly byType = new Map<string, AnyEventDefinition>();
  private readonly upcasterByFrom = new Map<string, Upcaster>();

  constructor(definitions: readonly AnyEventDefinition[], ups: readonly Upcaster[] = upcasters) {
    for (const d of definitions) this.byType.set(d.type, d);
    for (const u of ups) this.upcasterByFrom.set(u.from, u);
  }

  definition(type: string): AnyEventDefinition | undefined {
    return this.byType.get(type);
  }

  knows(type: string): boolean {
    return this.byType.has(type) || this.upcasterByFrom.has(type);
  }

  parse(envelope: EventEnvelope): ParsedEvent {
    let type = envelope.eventType;
    let data = envelope.data;
    for (let up = this.upcasterByFrom.get(type); up; up = this.upcasterByFrom.get(type)) {
      data = up.upcast(data);
      type = up.to;
    }
    const definition = this.byType.get(type);
    if (!definition) throw new UnknownEventTypeError(envelope.eventType);
    return { type: definition.type, data: definition.schema.parse(data), envelope };
  }
}

export class UnknownEventTypeError extends Error {
  constructor(readonly eventType: string) {
    super(`Unknown event type ${eventType}`);
    this.name = 'UnknownEventTypeError';
  }
}
