import { EventRegistry, UsageStatsEvents } from '@threadline/contracts';
import type { Projection } from '@threadline/event-store';
import { UsageStatsProjection } from './usage-stats/usage-stats.projection';

/** Every event definition the analytics projections read (latest versions; upcasters from contracts). */
export const analyticsEventRegistry = () => new EventRegistry(UsageStatsEvents);

/** Every projection of the analytics projector (the CLI lists, rebuilds and retries these). */
export const analyticsProjections = (): Projection[] => [new UsageStatsProjection()];
