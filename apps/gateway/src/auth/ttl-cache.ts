/**
 * A small in-memory cache whose entries expire `ttlMs` after they were set, holding at most
 * `maxEntries` (past it, the oldest entry set goes first). `ttlMs` 0 caches nothing. `now` is the
 * clock in ms (tests pass their own). Not shared between processes.
 */
export class TtlCache<V> {
  private readonly entries = new Map<string, { value: V; expiresAt: number }>();

  constructor(
    private readonly ttlMs: number,
    private readonly maxEntries: number,
    private readonly now: () => number = Date.now,
  ) {}

  /** The value set for `key` less than `ttlMs` ago, else `undefined`. */
  get(key: string): V | undefined {
    const entry = this.entries.get(key);
    if (entry === undefined) return undefined;
    if (entry.expiresAt > this.now()) return entry.value;
    this.entries.delete(key);
    return undefined;
  }

  /** Keeps `value` for `key` for `ttlMs` (from now). */
  set(key: string, value: V): void {
    if (this.ttlMs <= 0) return;
    this.entries.delete(key);
    if (this.entries.size >= this.maxEntries) {
      const oldest = this.entries.keys().next();
      if (oldest.done !== true) this.entries.delete(oldest.value);
    }
    this.entries.set(key, { value, expiresAt: this.now() + this.ttlMs });
  }

  /** Forgets `key`. */
  delete(key: string): void {
    this.entries.delete(key);
  }

  /** Entries held (expired ones not yet looked up included). */
  get size(): number {
    return this.entries.size;
  }
}
