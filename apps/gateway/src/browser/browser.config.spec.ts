import { ConfigError } from '@threadline/platform';
import { loadGatewayConfig } from '../config';
import { corsOptions } from './cors';

describe('CORS_ORIGINS', () => {
  it('allows no origin by default, nor when empty', () => {
    expect(loadGatewayConfig({}).CORS_ORIGINS).toEqual([]);
    expect(loadGatewayConfig({ CORS_ORIGINS: ' , ' }).CORS_ORIGINS).toEqual([]);
    expect(corsOptions({ CORS_ORIGINS: [] }).origin).toBe(false);
  });

  it('parses a comma-separated list of origins, spaces trimmed', () => {
    const config = loadGatewayConfig({ CORS_ORIGINS: 'https://app.example.com, http://127.0.0.1:5173' });
    expect(config.CORS_ORIGINS).toEqual(['https://app.example.com', 'http://127.0.0.1:5173']);
    expect(corsOptions(config).origin).toEqual(['https://app.example.com', 'http://127.0.0.1:5173']);
  });

  it.each([
    ['a path', 'https://app.example.com/dashboard'],
    ['a trailing slash', 'https://app.example.com/'],
    ['no scheme', 'app.example.com'],
    ['another scheme', 'ftp://files.example.com'],
    ['a wildcard', '*'],
  ])('refuses %s, naming the variable', (_what, origin) => {
    expect(() => loadGatewayConfig({ CORS_ORIGINS: `http://127.0.0.1:5173,${origin}` })).toThrow(ConfigError);
    expect(() => loadGatewayConfig({ CORS_ORIGINS: origin })).toThrow(/CORS_ORIGINS/);
  });
});
