import { ConfigError } from '@threadline/platform';
import { cleanupSettingsOf, loadCleanupWorkerConfig } from './config';

describe('cleanup-worker config', () => {
  it('defaults: 24 h timeout, 60 min interval, keep forever, batches of 100', () => {
    expect(cleanupSettingsOf(loadCleanupWorkerConfig({}))).toEqual({
      timeoutMs: 24 * 3_600_000,
      intervalMs: 60 * 60_000,
      retentionMs: null,
      batchSize: 100,
    });
  });

  it('reads hours, minutes and days (fractions allowed); an empty RETENTION_DAYS keeps forever', () => {
    const settings = cleanupSettingsOf(
      loadCleanupWorkerConfig({
        SESSION_TIMEOUT_HOURS: '0.5',
        CLEANUP_INTERVAL_MINUTES: '1.5',
        RETENTION_DAYS: '30',
        CLEANUP_BATCH_SIZE: '10',
      }),
    );
    expect(settings).toEqual({
      timeoutMs: 1_800_000,
      intervalMs: 90_000,
      retentionMs: 30 * 86_400_000,
      batchSize: 10,
    });
    expect(cleanupSettingsOf(loadCleanupWorkerConfig({ RETENTION_DAYS: '' })).retentionMs).toBeNull();
  });

  it('names every invalid variable', () => {
    let error: unknown;
    try {
      loadCleanupWorkerConfig({
        SESSION_TIMEOUT_HOURS: '0',
        CLEANUP_INTERVAL_MINUTES: 'soon',
        RETENTION_DAYS: '-1',
      });
    } catch (e) {
      error = e;
    }
    expect(error).toBeInstanceOf(ConfigError);
    const problems = (error as ConfigError).problems.join('\n');
    expect(problems).toMatch(/SESSION_TIMEOUT_HOURS/);
    expect(problems).toMatch(/CLEANUP_INTERVAL_MINUTES/);
    expect(problems).toMatch(/RETENTION_DAYS/);
  });
});
