import { GatewayAuth1732700000000 } from './1732700000000-gateway-auth';
import { DropKeyPrefix1796600000000 } from './1796600000000-drop-key-prefix';

/** The gateway's migrations (API keys, secrets, rate-limit counters), run after the event store's. */
export const gatewayMigrations = [GatewayAuth1732700000000, DropKeyPrefix1796600000000];
