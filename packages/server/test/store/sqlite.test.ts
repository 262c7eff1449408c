/** The Store conformance suite on SQLite: a fresh database file in a temporary directory per run. */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { SqliteStore } from '../../src/store/sqlite/sqlite-store.ts';
import { runStoreConformance, type StoreFixture } from './store-conformance.ts';
import { runTenantCommitConformance } from './tenant-commit-conformance.ts';

const sqliteFixture = async (): Promise<StoreFixture> => {
  const dir = await mkdtemp(join(tmpdir(), 'syncbridge-store-'));
  const file = join(dir, 'syncbridge.db');
  return {
    store: new SqliteStore({ file }),
    reopen: async (options = {}) => new SqliteStore({ file, ...options }),
    // Another process on the file: its own connection, holding SQLite's write lock.
    holdWriteLock: async () => {
      const other = new Database(file);
      other.exec('BEGIN EXCLUSIVE');
      return async () => {
        other.exec('ROLLBACK');
        other.close();
      };
    },
    // A database that may not grow past the pages it has once migrated (PRAGMA max_page_count).
    full: async () => {
      const fullDir = await mkdtemp(join(tmpdir(), 'syncbridge-full-'));
      const fullFile = join(fullDir, 'syncbridge.db');
      await new SqliteStore({ file: fullFile }).close();
      return {
        store: new SqliteStore({ file: fullFile, maxPageCount: 1 }),
        cleanup: () => rm(fullDir, { recursive: true, force: true }),
      };
    },
    cleanup: () => rm(dir, { recursive: true, force: true }),
  };
};

runStoreConformance('sqlite', sqliteFixture);
runTenantCommitConformance('sqlite', sqliteFixture);
