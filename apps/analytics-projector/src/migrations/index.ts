import { AnalyticsSessionCounts1732300000000 } from './1732300000000-session-counts';
import { AnalyticsDropSessionCounts1732500000000 } from './1732500000000-drop-session-counts';

/** The analytics projector's read-model migrations, in order (run after the event store's). */
export const analyticsMigrations = [
  AnalyticsSessionCounts1732300000000,
  AnalyticsDropSessionCounts1732500000000,
];
