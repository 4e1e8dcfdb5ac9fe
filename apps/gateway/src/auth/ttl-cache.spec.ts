import { TtlCache } from './ttl-cache';

describe('TtlCache', () => {
  let clock = 1_000;
  const now = () => clock;

  it('keeps a value for ttlMs after it was set, then forgets it', () => {
    const cache = new TtlCache<string>(100, 10, now);
    cache.set('a', 'A');
    clock += 99;
    expect(cache.get('a')).toBe('A');
    clock += 1;
    expect(cache.get('a')).toBeUndefined();
    expect(cache.size).toBe(0);
  });

  it('setting again starts the ttl again', () => {
    const cache = new TtlCache<string>(100, 10, now);
    cache.set('a', 'A');
    clock += 60;
    cache.set('a', 'A2');
    clock += 60;
    expect(cache.get('a')).toBe('A2');
  });

  it('holds at most maxEntries, dropping the oldest set first', () => {
    const cache = new TtlCache<number>(1_000, 2, now);
    cache.set('a', 1);
    cache.set('b', 2);
    cache.set('a', 3); // now the newest
    cache.set('c', 4);
    expect([cache.get('a'), cache.get('b'), cache.get('c')]).toEqual([3, undefined, 4]);
    expect(cache.size).toBe(2);
  });

  it('caches nothing with ttlMs 0, and forgets a deleted key', () => {
    const off = new TtlCache<string>(0, 10, now);
    off.set('a', 'A');
    expect(off.get('a')).toBeUndefined();
    const cache = new TtlCache<string>(100, 10, now);
    cache.set('a', 'A');
    cache.delete('a');
    expect(cache.get('a')).toBeUndefined();
  });
});
