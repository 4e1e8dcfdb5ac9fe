import { SessionServiceConfig } from '../config';
import { sessionLimitsOf } from './session-limits';

describe('session limits config', () => {
  it('defaults to 10 per user, end_oldest', () => {
    expect(sessionLimitsOf(SessionServiceConfig.parse({}))).toEqual({
      maxSessionsPerUser: 10,
      policy: 'end_oldest',
    });
  });

  it('reads 0 (no limit) and reject; refuses other policies and negative limits', () => {
    expect(
      sessionLimitsOf(
        SessionServiceConfig.parse({ MAX_SESSIONS_PER_USER: '0', MAX_SESSIONS_POLICY: 'reject' }),
      ),
    ).toEqual({ maxSessionsPerUser: 0, policy: 'reject' });
    expect(SessionServiceConfig.safeParse({ MAX_SESSIONS_POLICY: 'evict' }).success).toBe(false);
    expect(SessionServiceConfig.safeParse({ MAX_SESSIONS_PER_USER: '-1' }).success).toBe(false);
  });
});
