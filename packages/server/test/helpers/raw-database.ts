/**
 * Reads a test server's database as it is stored, for tests of encryption at rest: every row of every
 * table as text (a second SQLite connection, or a PostgreSQL client on the test schema), optionally
 * leaving some tables out.
 */
import { join } from 'node:path';
import Database from 'better-sqlite3';
import pg from 'pg';
import { POSTGRES_URL, type StoreKind, type TestStorage } from './server.ts';

export async function rawRows(kind: StoreKind, storage: TestStorage, except: string[] = []): Promise<string> {
  if (kind === 'sqlite') {
    const db = new Database(join(storage.dataDir, 'syncbridge.db'), { readonly: true });
    try {
      const tables = db
        .prepare<[], { name: string }>("SELECT name FROM sqlite_master WHERE type = 'table'")
        .all()
        .filter((t) => !except.includes(t.name));
      return tables.map((t) => JSON.stringify(db.prepare(`SELECT * FROM "${t.name}"`).all())).join('\n');
    } finally {
      db.close();
    }
  }
  const client = new pg.Client({ connectionString: POSTGRES_URL });
  await client.connect();
  try {
    const schema = storage.config.databaseSchema!;
    const tables = await client.query<{ table_name: string }>(
      'SELECT table_name FROM information_schema.tables WHERE table_schema = $1',
      [schema],
    );
    const texts: string[] = [];
    for (const t of tables.rows) {
      if (except.includes(t.table_name)) continue;
      const res = await client.query<{ row: string }>(
        `SELECT t::text AS row FROM ${schema}."${t.table_name}" t`,
      );
      texts.push(...res.rows.map((r) => r.row));
    }
    return texts.join('\n');
  } finally {
    await client.end();
  }
}
