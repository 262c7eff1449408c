/**
 * One record filter rule everywhere: the same cases through the in-memory evaluator (the protocol's
 * `matchesFilter`, which live channels and the SDK use) and its compilations to SQL, run on a real
 * SQLite database and on the real PostgreSQL, must pick the same records.
 */
import { matchesFilter, type RecordFilter } from '@syncbridge/protocol';
import Database from 'better-sqlite3';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { postgresFilter, sqliteFilter } from '../../src/store/filter-sql.ts';
import { POSTGRES_URL, storeKinds } from '../helpers/server.ts';

const hasPostgres = (await storeKinds()).includes('postgres');

const RECORDS: Record<string, unknown> = {
  open: { status: 'open', n: 1 },
  closed: { status: 'closed', n: 2 },
  oneText: { n: '1' },
  decimal: { n: 1.5 },
  zero: { n: 0, flag: false },
  negative: { n: -2 },
  big: { n: 123456789 },
  yes: { flag: true },
  yesText: { flag: 'true' },
  nested: { a: { b: 'x', c: { d: 7 } } },
  inArray: { a: [{ b: 'x' }] },
  arrayValue: { status: ['open'] },
  objectValue: { status: {} },
  nullValue: { status: null, a: null },
  nullText: { status: 'null' },
  empty: {},
  emptyText: { status: '' },
  unicode: { status: 'ouvert é€𝄞' },
  dottedKey: { 'a.b': 'x' },
  quote: { status: 'it\'s "quoted"' },
};

const FILTERS: RecordFilter[] = [
  {},
  { status: 'open' },
  { status: 'null' },
  { status: '' },
  { status: 'ouvert é€𝄞' },
  { status: 'it\'s "quoted"' },
  { n: '1' },
  { n: 1 },
  { n: '1.5' },
  { n: '0' },
  { n: '-2' },
  { n: 123456789 },
  { flag: 'true' },
  { flag: true },
  { flag: false },
  { 'a.b': 'x' },
  { 'a.c.d': '7' },
  { 'a.c': '[object Object]' },
  { a: 'null' },
  { status: 'open', n: '1' },
  { status: 'open', n: '2' },
  { missing: 'x' },
];

const inMemory = (filter: RecordFilter) =>
  Object.keys(RECORDS)
    .filter((id) => matchesFilter(RECORDS[id], filter))
    .sort();

describe('the record filter rule', () => {
  it('matches what the cases expect in memory', () => {
    expect(inMemory({ status: 'open' })).toEqual(['open']);
    expect(inMemory({ n: '1' })).toEqual(['oneText', 'open']);
    expect(inMemory({ flag: 'true' })).toEqual(['yes', 'yesText']);
    expect(inMemory({ 'a.b': 'x' })).toEqual(['nested']);
    expect(inMemory({ a: 'null' })).toEqual([]);
  });

  it('picks the same records on SQLite', () => {
    const db = new Database(':memory:');
    try {
      db.exec('CREATE TABLE records (id TEXT PRIMARY KEY, data TEXT NOT NULL)');
      const insert = db.prepare('INSERT INTO records (id, data) VALUES (?, ?)');
      for (const [id, data] of Object.entries(RECORDS)) insert.run(id, JSON.stringify(data));
      for (const filter of FILTERS) {
        const where = sqliteFilter(filter);
        const rows = db
          .prepare(`SELECT id FROM records WHERE 1 = 1${where.sql} ORDER BY id`)
          .all(...where.params) as Array<{ id: string }>;
        expect({ filter, ids: rows.map((r) => r.id).sort() }).toEqual({ filter, ids: inMemory(filter) });
      }
    } finally {
      db.close();
    }
  });

  describe.skipIf(!hasPostgres)('on PostgreSQL', () => {
    const client = new pg.Client({ connectionString: POSTGRES_URL });
    beforeAll(async () => {
      await client.connect();
      await client.query('CREATE TEMP TABLE records (id text PRIMARY KEY, data jsonb NOT NULL)');
      for (const [id, data] of Object.entries(RECORDS)) {
        await client.query('INSERT INTO records (id, data) VALUES ($1, $2)', [id, JSON.stringify(data)]);
      }
    });
    afterAll(async () => {
      await client.end();
    });

    it('picks the same records', async () => {
      for (const filter of FILTERS) {
        const where = postgresFilter(filter, 1);
        const { rows } = await client.query<{ id: string }>(
          `SELECT id FROM records WHERE true${where.sql}`,
          where.params,
        );
        expect({ filter, ids: rows.map((r) => r.id).sort() }).toEqual({ filter, ids: inMemory(filter) });
      }
    });
  });
});
