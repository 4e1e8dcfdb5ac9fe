import { GatewayAuth1732700000000 } from './1732700000000-gateway-auth';

/** The gateway's migrations (API keys, secrets, rate-limit counters), run after the event store's. */
export const gatewayMigrations = [GatewayAuth1732700000000];
