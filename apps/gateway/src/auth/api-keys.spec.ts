import { createHash } from 'node:crypto';
import { ConfigError } from '@threadline/platform';
import { ApiKeyText, generateApiKey, hashApiKey, KeyId } from './api-keys';
import { assertAuthModeAllowed } from './auth.config';
import { looksLikeToken } from './user-tokens';

describe('API keys', () => {
  it('are random, recognisable, and never look like a user token', () => {
    const a = generateApiKey();
    const b = generateApiKey();
    expect(a.key).not.toBe(b.key);
    expect(a.keyId).not.toBe(b.keyId);
    expect(ApiKeyText.safeParse(a.key).success).toBe(true);
    expect(KeyId.safeParse(a.keyId).success).toBe(true);
    expect(a.key.startsWith('tlk_')).toBe(true);
    expect(looksLikeToken(a.key)).toBe(false);
  });

  it('are stored as the SHA-256 of the whole key (64 hex characters, not the key)', () => {
    const { key } = generateApiKey();
    const hash = hashApiKey(key);
    expect(hash).toMatch(/^[0-9a-f]{64}$/);
    expect(hash).not.toContain(key.slice(4, 14));
    expect(hashApiKey(key)).toBe(hash);
    expect(hashApiKey(`${key}x`)).not.toBe(hash);
    // The very digest keys were always stored under (whichever Node API computes it).
    expect(hash).toBe(createHash('sha256').update(key, 'utf8').digest('hex'));
  });
});

describe('AUTH_MODE', () => {
  it('none is refused in production, allowed elsewhere', () => {
    expect(() => assertAuthModeAllowed({ NODE_ENV: 'production', AUTH_MODE: 'none' })).toThrow(ConfigError);
    expect(() => assertAuthModeAllowed({ NODE_ENV: 'development', AUTH_MODE: 'none' })).not.toThrow();
    expect(() => assertAuthModeAllowed({ NODE_ENV: 'production', AUTH_MODE: 'api_key' })).not.toThrow();
  });
});
