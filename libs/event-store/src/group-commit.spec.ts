import { GroupCommitQueue, type Queued } from './group-commit';

/**
 * A queue whose batches are recorded and held open until released, answering each item with a `!`.
 * An item is `key:name`; `alone`, when given, names the items written alone.
 */
function recordingQueue(opts: {
  maxInFlight: number;
  maxBatch: number;
  alone?: (item: string) => boolean;
  maxQueued?: number;
  maxWaitMs?: number;
}) {
  const batches: string[][] = [];
  const releases: (() => void)[] = [];
  const queue = new GroupCommitQueue<string, string>({
    ...opts,
    keysOf: (item) => [item.split(':')[0]!],
    write: async (batch: readonly Queued<string, string>[]) => {
      batches.push(batch.map((q) => q.item));
      await new Promise<void>((resolve) => releases.push(resolve));
      for (const q of batch) q.resolve(`${q.item}!`);
    },
  });
  const releaseAll = async () => {
    while (releases.length > 0) {
      releases.shift()!();
      await new Promise((resolve) => setImmediate(resolve));
      await new Promise((resolve) => setImmediate(resolve));
    }
  };
  return { queue, batches, releaseAll };
}

/** A settled push as the specs compare it: its value, or its error's message. */
const outcomeOf = (o: PromiseSettledResult<string>): string =>
  o.status === 'fulfilled' ? o.value : (o.reason as Error).message;

describe('GroupCommitQueue', () => {
  it('writes items pushed together in one batch, and those with a common key one batch after another, in order', async () => {
    const { queue, batches, releaseAll } = recordingQueue({ maxInFlight: 2, maxBatch: 10 });
    const results = Promise.all(['a:1', 'b:1', 'a:2', 'c:1', 'a:3'].map((item) => queue.push(item)));
    await new Promise((resolve) => setImmediate(resolve));
    // The second batch may not start while a:1 is written: a:2 and a:3 wait behind it.
    expect(batches).toEqual([['a:1', 'b:1', 'c:1']]);
    await releaseAll();
    await releaseAll();
    expect(await results).toEqual(['a:1!', 'b:1!', 'a:2!', 'c:1!', 'a:3!']);
    expect(batches).toEqual([['a:1', 'b:1', 'c:1'], ['a:2'], ['a:3']]);
  });

  it('holds at most maxBatch items a batch and runs at most maxInFlight batches at once', async () => {
    const { queue, batches, releaseAll } = recordingQueue({ maxInFlight: 1, maxBatch: 2 });
    const results = Promise.all(['a:1', 'b:1', 'c:1', 'd:1', 'e:1'].map((item) => queue.push(item)));
    await new Promise((resolve) => setImmediate(resolve));
    expect(batches).toEqual([['a:1', 'b:1']]);
    await releaseAll();
    await releaseAll();
    await releaseAll();
    await results;
    expect(batches).toEqual([['a:1', 'b:1'], ['c:1', 'd:1'], ['e:1']]);
  });

  it('writes alone items each in a batch of its own, beside a full maxInFlight, behind earlier items of their key', async () => {
    const { queue, batches, releaseAll } = recordingQueue({
      maxInFlight: 1,
      maxBatch: 10,
      alone: (item) => item.endsWith('big'),
    });
    const items = ['a:1', 'b:big', 'c:1', 'd:big', 'a:big', 'b:2', 'e:big', 'e:1'];
    const results = Promise.all(items.map((item) => queue.push(item)));
    await new Promise((resolve) => setImmediate(resolve));
    // a:big waits behind a:1, b:2 behind b:big, e:1 behind e:big; the others start at once.
    expect(batches).toEqual([['b:big'], ['d:big'], ['e:big'], ['a:1', 'c:1']]);
    // With the one counted batch still open, an alone item pushed now starts beside it.
    const late = queue.push('f:big');
    await new Promise((resolve) => setImmediate(resolve));
    expect(batches[4]).toEqual(['f:big']);
    await releaseAll();
    await releaseAll();
    await releaseAll();
    expect(await results).toEqual(items.map((item) => `${item}!`));
    expect(await late).toBe('f:big!');
    expect(batches.slice(5).sort()).toEqual([['a:big'], ['b:2', 'e:1']]);
    // Per key, in the order pushed.
    const order = batches.flat();
    for (const [earlier, later] of [
      ['a:1', 'a:big'],
      ['b:big', 'b:2'],
      ['e:big', 'e:1'],
    ])
      expect(order.indexOf(earlier!)).toBeLessThan(order.indexOf(later!));
  });

  it('rejects the items a failed write left unsettled, and goes on with the next batch', async () => {
    let calls = 0;
    const queue = new GroupCommitQueue<string, string>({
      maxInFlight: 1,
      maxBatch: 2,
      keysOf: (item) => [item],
      write: (batch) => {
        calls += 1;
        if (calls === 1) {
          batch[0]!.resolve('settled');
          return Promise.reject(new Error('statement failed'));
        }
        for (const q of batch) q.resolve('ok');
        return Promise.resolve();
      },
    });
    const outcomes = await Promise.allSettled(['x', 'y', 'z'].map((item) => queue.push(item)));
    expect(outcomes.map(outcomeOf)).toEqual(['settled', 'statement failed', 'ok']);
  });

  it('a failed alone write rejects only its item; the next item of its key still runs', async () => {
    const queue = new GroupCommitQueue<string, string>({
      maxInFlight: 1,
      maxBatch: 10,
      keysOf: (item) => [item.split(':')[0]!],
      alone: (item) => item.endsWith('big'),
      write: (batch) => {
        if (batch.some((q) => q.item === 'a:big')) return Promise.reject(new Error('statement failed'));
        for (const q of batch) q.resolve('ok');
        return Promise.resolve();
      },
    });
    const outcomes = await Promise.allSettled(['a:big', 'b:1', 'a:2'].map((item) => queue.push(item)));
    expect(outcomes.map(outcomeOf)).toEqual(['statement failed', 'ok', 'ok']);
  });

  it('refuses a push beyond maxQueued at once (SERVICE.UNAVAILABLE), before any work', async () => {
    const { queue, batches, releaseAll } = recordingQueue({ maxInFlight: 1, maxBatch: 1, maxQueued: 2 });
    const first = queue.push('a:1');
    await new Promise((resolve) => setImmediate(resolve)); // a:1 is being written: no longer queued
    const waiting = [queue.push('b:1'), queue.push('c:1')];
    const refused = await queue.push('d:1').then(
      () => 'written',
      (error: unknown) => error,
    );
    expect(refused).toMatchObject({ code: 'SERVICE.UNAVAILABLE' });
    await releaseAll();
    await releaseAll();
    await releaseAll();
    expect(await Promise.all([first, ...waiting])).toEqual(['a:1!', 'b:1!', 'c:1!']);
    expect(batches.flat()).not.toContain('d:1');
  });

  it('refuses, without writing them, items that waited past maxWaitMs for their batch', async () => {
    const { queue, batches, releaseAll } = recordingQueue({ maxInFlight: 1, maxBatch: 10, maxWaitMs: 30 });
    const first = queue.push('a:1');
    await new Promise((resolve) => setImmediate(resolve));
    const stale = queue.push('b:1');
    stale.catch(() => undefined);
    await new Promise((resolve) => setTimeout(resolve, 60)); // a:1's batch is slow: b:1 waits 60 ms
    await releaseAll();
    await expect(stale).rejects.toMatchObject({ code: 'SERVICE.UNAVAILABLE' });
    expect(await first).toBe('a:1!');
    const fresh = queue.push('c:1');
    await new Promise((resolve) => setImmediate(resolve));
    await releaseAll();
    expect(await fresh).toBe('c:1!');
    expect(batches).toEqual([['a:1'], ['c:1']]);
  });
});
