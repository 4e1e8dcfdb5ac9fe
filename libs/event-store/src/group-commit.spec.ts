import { GroupCommitQueue, type Queued } from './group-commit';

/** A queue whose batches are recorded and held open until released, answering each item doubled. */
function recordingQueue(opts: { maxInFlight: number; maxBatch: number }) {
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
    expect(outcomes.map((o) => (o.status === 'fulfilled' ? o.value : (o.reason as Error).message))).toEqual([
      'settled',
      'statement failed',
      'ok',
    ]);
  });
});
