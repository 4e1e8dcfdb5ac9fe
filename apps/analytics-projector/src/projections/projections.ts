import { EventRegistry, SessionEvents } from '@threadline/contracts';
import type { Projection } from '@threadline/event-store';
import { SessionCountsProjection } from './session-counts/session-counts.projection';

/** Every event definition the analytics projections read (latest versions; upcasters from contracts). */
export const analyticsEventRegistry = () => new EventRegistry(SessionEvents);

/** Every projection of the analytics projector (the CLI lists, rebuilds and retries these). */
export const analyticsProjections = (): Projection[] => [new SessionCountsProjection()];
