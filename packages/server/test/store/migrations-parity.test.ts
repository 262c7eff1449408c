/**
 * The two stores' migration lists are kept by hand; this holds them together. Both reach the same
 * schema version, every version both have is the same change, and each version only PostgreSQL has
 * is a migration of SQLite's separate connectors database (its connector tables are in the main
 * schema on PostgreSQL). Migrating a fresh database of each kind ends at that version with the same
 * tables.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import pg from 'pg';
import { describe, expect, it } from 'vitest';
import { POSTGRES_MIGRATIONS } from '../../src/store/postgres/migrations.ts';
import { PostgresStore } from '../../src/store/postgres/postgres-store.ts';
import { CONNECTOR_MIGRATIONS } from '../../src/store/sqlite/connector-store.ts';
import { SQLITE_MIGRATIONS } from '../../src/store/sqlite/migrations.ts';
import { SqliteStore } from '../../src/store/sqlite/sqlite-store.ts';
import { POSTGRES_URL, storeKinds } from '../helpers/server.ts';

const hasPostgres = (await storeKinds()).includes('postgres');

/** PostgreSQL versions that are, on SQLite, a migration of connectors.db (by its version). */
const IN_CONNECTORS_DB: Record<number, number> = { 8: 1, 12: 2 };
const CONNECTOR_TABLES = ['connector_configs', 'connector_secrets', 'connector_state', 'ticks'];

const versions = (list: Array<{ version: number }>) => list.map((m) => m.version);
const last = (list: Array<{ version: number }>) => list[list.length - 1]!.version;

describe('migration lists', () => {
  it('grow strictly and end at the same schema version', () => {
    for (const list of [SQLITE_MIGRATIONS, POSTGRES_MIGRATIONS, CONNECTOR_MIGRATIONS]) {
      const v = versions(list);
      expect(v).toEqual([...v].sort((a, b) => a - b));
      expect(new Set(v).size).toBe(v.length);
    }
    expect(last(SQLITE_MIGRATIONS)).toBe(last(POSTGRES_MIGRATIONS));
  });

  it('hold the same changes under the same versions', () => {
    const sqlite = new Map(SQLITE_MIGRATIONS.map((m) => [m.version, m.name]));
    const connectors = new Map(CONNECTOR_MIGRATIONS.map((m) => [m.version, m.name]));
    for (const m of POSTGRES_MIGRATIONS) {
      const elsewhere = IN_CONNECTORS_DB[m.version];
      if (elsewhere !== undefined) {
        expect(sqlite.has(m.version), `version ${m.version} is in connectors.db on SQLite`).toBe(false);
        expect(connectors.has(elsewhere), `connectors.db migration ${elsewhere}`).toBe(true);
      } else {
        expect({ version: m.version, name: sqlite.get(m.version) }).toEqual({
          version: m.version,
          name: m.name,
        });
      }
    }
    for (const version of sqlite.keys()) expect(versions(POSTGRES_MIGRATIONS)).toContain(version);
    expect(Object.values(IN_CONNECTORS_DB).sort()).toEqual(versions(CONNECTOR_MIGRATIONS));
  });

  it.skipIf(!hasPostgres)('migrate fresh databases to that version, with the same tables', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'sb-migrations-'));
    const schema = `sb_t_mig_${Math.random().toString(36).slice(2, 10)}`;
    const admin = new pg.Client({ connectionString: POSTGRES_URL });
    await admin.connect();
    try {
      const sqliteStore = new SqliteStore({ file: join(dir, 'syncbridge.db') });
      await sqliteStore.migrate();
      await sqliteStore.close();
      const db = new Database(join(dir, 'syncbridge.db'), { readonly: true });
      const sqliteVersion = (
        db.prepare('SELECT max(version) AS v FROM schema_migrations').get() as { v: number }
      ).v;
      const sqliteTables = (
        db
          .prepare("SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'")
          .all() as Array<{ name: string }>
      ).map((r) => r.name);
      db.close();

      const pgStore = new PostgresStore({ connectionString: POSTGRES_URL, schema });
      await pgStore.migrate();
      await pgStore.close();
      const pgVersion = Number(
        (await admin.query(`SELECT max(version) AS v FROM ${schema}.schema_migrations`)).rows[0].v,
      );
      const pgTables = (
        await admin.query<{ table_name: string }>(
          'SELECT table_name FROM information_schema.tables WHERE table_schema = $1',
          [schema],
        )
      ).rows.map((r) => r.table_name);

      expect(sqliteVersion).toBe(last(SQLITE_MIGRATIONS));
      expect(pgVersion).toBe(sqliteVersion);
      expect(pgTables.filter((t) => !CONNECTOR_TABLES.includes(t)).sort()).toEqual(sqliteTables.sort());
    } finally {
      await admin.query(`DROP SCHEMA IF EXISTS ${schema} CASCADE`);
      await admin.end();
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
