import { createHmac } from 'node:crypto';
import { InvalidUserTokenError, looksLikeToken, MAX_TOKEN_TTL_SECONDS, UserTokens } from './user-tokens';

const SECRET = 'a-test-secret-of-at-least-32-characters!';
const input = { tenantId: 'acme', userId: 'alice', keyId: 'key_0123456789ab', ttlSeconds: 600 };
const now = new Date('2026-01-01T00:00:00Z');
const b64 = (v: unknown) => Buffer.from(JSON.stringify(v)).toString('base64url');

const reasonOf = async (fn: () => Promise<unknown>): Promise<string> => {
  try {
    await fn();
  } catch (error) {
    if (error instanceof InvalidUserTokenError) return error.reason;
    throw error;
  }
  throw new Error('expected the token to be refused');
};

describe('UserTokens', () => {
  const tokens = new UserTokens(SECRET);

  it('signs a token that verifies to its user, tenant and minting key', async () => {
    const { token, expiresAt } = await tokens.sign(input, now);
    expect(looksLikeToken(token)).toBe(true);
    expect(expiresAt.toISOString()).toBe('2026-01-01T00:10:00.000Z');
    const claims = await tokens.verify(token, new Date(now.getTime() + 599_000));
    expect(claims).toMatchObject({ sub: 'alice', tid: 'acme', kid: 'key_0123456789ab', iss: 'threadline' });
  });

  it('refuses an expired token, and caps the lifetime', async () => {
    const { token } = await tokens.sign(input, now);
    expect(await reasonOf(() => tokens.verify(token, new Date(now.getTime() + 600_000)))).toBe('expired');
    const long = await tokens.sign({ ...input, ttlSeconds: 10 * MAX_TOKEN_TTL_SECONDS }, now);
    expect(long.expiresAt.getTime() - now.getTime()).toBe(MAX_TOKEN_TTL_SECONDS * 1000);
  });

  it('refuses a token signed with another secret', async () => {
    const { token } = await new UserTokens('another-secret-of-at-least-32-characters').sign(input, now);
    expect(await reasonOf(() => tokens.verify(token, now))).toBe('bad signature');
  });

  it('refuses a token whose claims were changed (another user or tenant)', async () => {
    const { token } = await tokens.sign(input, now);
    const [header, payload, signature] = token.split('.') as [string, string, string];
    const claims = JSON.parse(Buffer.from(payload, 'base64url').toString()) as Record<string, unknown>;
    const forged = `${header}.${b64({ ...claims, sub: 'bob' })}.${signature}`;
    expect(await reasonOf(() => tokens.verify(forged, now))).toBe('bad signature');
  });

  it('refuses alg "none" and any algorithm but HS256, even when the MAC is right', async () => {
    const { token } = await tokens.sign(input, now);
    const payload = token.split('.')[1] ?? '';
    expect(await reasonOf(() => tokens.verify(`${b64({ alg: 'none' })}.${payload}.`, now))).toBe(
      'bad header',
    );
    const header = b64({ alg: 'HS512', typ: 'JWT' });
    const mac = createHmac('sha256', SECRET).update(`${header}.${payload}`).digest('base64url');
    expect(await reasonOf(() => tokens.verify(`${header}.${payload}.${mac}`, now))).toBe('bad header');
  });

  it('refuses garbage without throwing anything else', async () => {
    for (const junk of ['', 'a.b', 'a.b.c', '...', 'x'.repeat(5000), 'é.é.é', 'eyJ.eyJ.sig']) {
      await expect(tokens.verify(junk, now)).rejects.toThrow(InvalidUserTokenError);
    }
  });

  it('needs a secret of at least 32 bytes', () => {
    expect(() => new UserTokens('short')).toThrow(/32 bytes/);
  });
});
