import { type Write } from './load';
import { recoveryOf } from './runner';
import { tally } from './verify';

const write = (key: string, acked: boolean, kind: Write['kind'] = 'turn'): Write => ({
  kind,
  key,
  sessionId: 's1',
  acked,
  attempts: 1,
});

describe('tally: lost and duplicated writes', () => {
  it('counts an acknowledged write stored 0 times as lost and 2 times as duplicated', () => {
    const writes = [write('a', true), write('b', true), write('c', true)];
    const stored = new Map([
      ['a', 1],
      ['b', 0],
      ['c', 2],
    ]);
    const { counts, problems } = tally(writes, (w) => stored.get(w.key) ?? 0);
    expect(counts).toMatchObject({ acknowledged: 3, stored: 2, lost: 1, duplicated: 1 });
    expect(problems).toEqual([
      '1 acknowledged writes lost, e.g. turn b',
      'writes stored more than once, e.g. turn c x2',
    ]);
  });

  it('allows an unacknowledged write to be stored once, never twice', () => {
    const writes = [write('a', false), write('b', false), write('c', false, 'create')];
    const stored = new Map([
      ['a', 0],
      ['b', 1],
      ['c', 2],
    ]);
    const { counts, problems } = tally(writes, (w) => stored.get(w.key) ?? 0);
    expect(counts).toMatchObject({
      acknowledged: 0,
      unacknowledged: 3,
      unacknowledgedStored: 1,
      duplicatedUnacknowledged: 1,
      lost: 0,
    });
    expect(problems).toEqual(['writes stored more than once, e.g. unacknowledged create c x2']);
  });

  it('finds nothing wrong when every acknowledged write is stored once', () => {
    const { counts, problems } = tally([write('a', true), write('b', true, 'end')], () => 1);
    expect(counts).toMatchObject({ acknowledged: 2, stored: 2, lost: 0, duplicated: 0 });
    expect(problems).toEqual([]);
  });
});

describe('recoveryOf: from the fault to the first acknowledgement after the last failure', () => {
  const stats = (failureTimes: number[], ackTimes: number[]) => ({
    attempts: 0,
    retries: 0,
    networkErrors: 0,
    statuses: {},
    failureTimes,
    ackTimes,
  });

  it('is 0 when nothing failed after the fault (failures before it do not count)', () => {
    expect(recoveryOf(stats([500], [100, 1000, 2000]), 1000)).toBe(0);
  });

  it('is the first ack after the last failure, in seconds from the fault', () => {
    expect(recoveryOf(stats([1500, 4000], [1200, 3000, 4500, 5000]), 1000)).toBe(3.5);
  });

  it('is null when no write succeeded after the last failure', () => {
    expect(recoveryOf(stats([1500, 4000], [1200, 3000]), 1000)).toBeNull();
  });
});
