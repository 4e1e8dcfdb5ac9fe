import { createTestDatabase, type TestDatabase } from '@threadline/testing';

// `Db.transaction`'s `copyFrom` (COPY ... FROM STDIN, text format) against the real Postgres.

let tdb: TestDatabase;

beforeAll(async () => {
  tdb = await createTestDatabase();
  await tdb.db.query(
    `CREATE TABLE copied (id integer PRIMARY KEY, label text, amount numeric, big bigint, flag boolean,
                          at timestamptz, doc jsonb)`,
  );
});

afterAll(async () => {
  await tdb?.drop();
});

interface Row {
  id: number;
  label: string | null;
  amount: number | null;
  big?: bigint | number | null;
  flag: boolean | null;
  at: string | Date | null;
  doc?: unknown;
}

const COLUMNS = ['id', 'label', 'amount', 'big', 'flag', 'at', 'doc'] as const;

describe('Db.transaction copyFrom', () => {
  it('loads every value as an INSERT would, escaping what COPY text format treats specially', async () => {
    const rows: Row[] = [
      {
        id: 1,
        label: 'tab\there, newline\nthere, return\r, backslash \\ and \\N and \\.',
        amount: 0.0000846,
        big: 9007199254740993n,
        flag: true,
        at: '2026-11-22T01:43:19.178Z',
        doc: { quote: 'a "b"\tc', list: [1, null] },
      },
      { id: 2, label: null, amount: 1e-7, big: null, flag: false, at: new Date('2026-01-02T03:04:05.006Z') },
      { id: 3, label: '', amount: 12, big: 42, flag: null, at: null, doc: null },
      { id: 4, label: 'ünïcødé ✓ 🙂', amount: -3.5, flag: true, at: '2026-11-22T00:00:00+02:00' },
    ];
    const copied = await tdb.db.transaction((tx) => tx.copyFrom('copied', COLUMNS, rows));
    expect(copied).toBe(4);
    const back = await tdb.db.query(
      `SELECT id, label, amount::text AS amount, big::text AS big, flag,
              to_char(at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS') AS at, doc
       FROM copied ORDER BY id`,
    );
    expect(back).toEqual([
      {
        id: 1,
        label: 'tab\there, newline\nthere, return\r, backslash \\ and \\N and \\.',
        amount: '0.0000846',
        big: '9007199254740993',
        flag: true,
        at: '2026-11-22T01:43:19.178',
        doc: { quote: 'a "b"\tc', list: [1, null] },
      },
      {
        id: 2,
        label: null,
        amount: '0.0000001',
        big: null,
        flag: false,
        at: '2026-01-02T03:04:05.006',
        doc: null,
      },
      { id: 3, label: '', amount: '12', big: '42', flag: null, at: null, doc: null },
      {
        id: 4,
        label: 'ünïcødé ✓ 🙂',
        amount: '-3.5',
        big: null,
        flag: true,
        at: '2026-11-21T22:00:00.000',
        doc: null,
      },
    ]);
  });

  it("rejects with Postgres's error and rolls the whole transaction back", async () => {
    const attempt = tdb.db.transaction(async (tx) => {
      await tx.query(`INSERT INTO copied (id, label) VALUES (100, 'before the copy')`);
      await tx.copyFrom(
        'copied',
        ['id', 'label'],
        [
          { id: 101, label: 'fine' },
          { id: 1, label: 'duplicate key' },
        ],
      );
    });
    await expect(attempt).rejects.toMatchObject({ code: '23505' });
    const left = await tdb.db.query(`SELECT id FROM copied WHERE id >= 100`);
    expect(left).toEqual([]);
    // The connection went back to the pool usable.
    expect(await tdb.db.transaction((tx) => tx.copyFrom('copied', ['id'], [{ id: 102 }]))).toBe(1);
  });

  it('copies nothing, without a statement, for no rows', async () => {
    expect(await tdb.db.transaction((tx) => tx.copyFrom('no_such_table', ['id'], []))).toBe(0);
  });
});
