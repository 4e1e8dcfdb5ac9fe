import { readFileSync } from 'node:fs';
import { connect, credsAuthenticator, type NatsConnection } from '@nats-io/transport-node';
import { credsAuthenticator as natsV2CredsAuthenticator } from 'nats';

/** NATS settings every service reads (see `BaseConfig` in `@threadline/platform`). */
export interface NatsSettings {
  NATS_URL: string;
  NATS_USER?: string | undefined;
  NATS_PASS?: string | undefined;
  NATS_CREDS_FILE?: string | undefined;
}

/**
 * Options for the `nats` v2 package NestJS's built-in transport uses (commands and queries: the request
 * client and every service's queue-group server); {@link connectNats} uses them for the JetStream
 * connection of `@nats-io/transport-node` too. Credentials: user/password, or a creds file
 * (`NATS_CREDS_FILE`: the user's JWT and nkey seed), read here, so every connection presents it.
 * `noAsyncTraces`: a request does not capture two stack traces up front for its possible error
 * (measured ~10% of the gateway's per-request JavaScript); errors keep their own stack.
 */
export function natsConnectOptions(settings: NatsSettings, name: string) {
  return {
    servers: settings.NATS_URL.split(','),
    name,
    ...(settings.NATS_USER ? { user: settings.NATS_USER, pass: settings.NATS_PASS } : {}),
    ...(settings.NATS_CREDS_FILE
      ? { authenticator: natsV2CredsAuthenticator(new Uint8Array(readFileSync(settings.NATS_CREDS_FILE))) }
      : {}),
    maxReconnectAttempts: -1,
    reconnectTimeWait: 500,
    noAsyncTraces: true,
  };
}

/**
 * Connects the JetStream client (`@nats-io/transport-node`, with its own creds authenticator: the two
 * packages' authenticators are not interchangeable). Throws when NATS is unreachable or refuses the
 * credentials.
 */
export async function connectNats(settings: NatsSettings, name: string): Promise<NatsConnection> {
  return connect({
    ...natsConnectOptions(settings, name),
    ...(settings.NATS_CREDS_FILE
      ? { authenticator: credsAuthenticator(new Uint8Array(readFileSync(settings.NATS_CREDS_FILE))) }
      : {}),
  });
}

export type { NatsConnection };
