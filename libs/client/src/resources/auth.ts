import type { Transport, WriteOptions } from '../transport';
import type { UserToken, UserTokenInput } from '../types';

/** `client.auth`: credentials for end users. */
export class Auth {
  constructor(private readonly t: Transport) {}

  /**
   * Mints a short-lived token for one user (`POST /auth/user-tokens`; a service or admin key): a browser
   * or mobile client then calls Threadline as that user (`new Threadline({ baseUrl, userToken: token })`),
   * seeing only that user's sessions. `ttl_seconds` 1-86400 (default 900).
   * @throws PermissionDeniedError when the caller is itself a user token.
   */
  createUserToken(input: UserTokenInput, options?: WriteOptions): Promise<UserToken> {
    return this.t.json({ method: 'post', path: '/auth/user-tokens', body: input, write: true, options });
  }
}
