import { DomainError } from '@threadline/platform';
import { answerAsReadWould } from './chosen-ids';

const taken = new DomainError('SESSION.ALREADY_EXISTS', 'Session s-1 already exists');
const notFound = new DomainError('SESSION.NOT_FOUND', 'Session s-1 not found');
const failWith = (error: Error) => () => Promise.reject(error);
const ok = () => Promise.resolve({ ok: true });

describe('answerAsReadWould', () => {
  it('a user token whose chosen id it cannot see gets the read\u2019s 404, not the 409', async () => {
    const reads = [jest.fn(failWith(notFound)), jest.fn(ok)];
    await expect(
      answerAsReadWould(failWith(taken), { scoped: true, takenCode: 'SESSION.ALREADY_EXISTS', reads }),
    ).rejects.toBe(notFound);
    expect(reads[1]).not.toHaveBeenCalled();
  });

  it('keeps the 409 when every read succeeds (the holder is the caller\u2019s own)', async () => {
    await expect(
      answerAsReadWould(failWith(taken), {
        scoped: true,
        takenCode: 'SESSION.ALREADY_EXISTS',
        reads: [ok, ok],
      }),
    ).rejects.toBe(taken);
  });

  it('API keys (not scoped) get the 409 without any read', async () => {
    const read = jest.fn(failWith(notFound));
    await expect(
      answerAsReadWould(failWith(taken), {
        scoped: false,
        takenCode: 'SESSION.ALREADY_EXISTS',
        reads: [read],
      }),
    ).rejects.toBe(taken);
    expect(read).not.toHaveBeenCalled();
  });

  it('passes other errors and successes through untouched', async () => {
    const other = new DomainError('SESSION.LIMIT_REACHED', 'limit');
    const read = jest.fn(failWith(notFound));
    const guard = { scoped: true, takenCode: 'SESSION.ALREADY_EXISTS' as const, reads: [read] };
    await expect(answerAsReadWould(failWith(other), guard)).rejects.toBe(other);
    await expect(answerAsReadWould(failWith(new Error('boom')), guard)).rejects.toThrow('boom');
    await expect(answerAsReadWould(() => Promise.resolve(42), guard)).resolves.toBe(42);
    expect(read).not.toHaveBeenCalled();
  });
});
