/**
 * The Store conformance suites on SQLite with the log committed on its commit thread
 * (`commitThread: true`, SYNCBRIDGE_SQLITE_COMMIT_THREAD=on): the same fixture as sqlite.test.ts.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { SqliteStore } from '../../src/store/sqlite/sqlite-store.ts';
import { runStoreConformance, type StoreFixture } from './store-conformance.ts';
import { runTenantCommitConformance } from './tenant-commit-conformance.ts';

const threadFixture = async (): Promise<StoreFixture> => {
  const dir = await mkdtemp(join(tmpdir(), 'syncbridge-store-thread-'));
  const file = join(dir, 'syncbridge.db');
  return {
    store: new SqliteStore({ file, commitThread: true }),
    reopen: async (options = {}) => new SqliteStore({ file, commitThread: true, ...options }),
    holdWriteLock: async () => {
      const other = new Database(file);
      other.exec('BEGIN EXCLUSIVE');
      return async () => {
        other.exec('ROLLBACK');
        other.close();
      };
    },
    full: async () => {
      const fullDir = await mkdtemp(join(tmpdir(), 'syncbridge-full-thread-'));
      const fullFile = join(fullDir, 'syncbridge.db');
      await new SqliteStore({ file: fullFile }).close();
      return {
        store: new SqliteStore({ file: fullFile, maxPageCount: 1, commitThread: true }),
        cleanup: () => rm(fullDir, { recursive: true, force: true }),
      };
    },
    cleanup: () => rm(dir, { recursive: true, force: true }),
  };
};

runStoreConformance('sqlite (commit thread)', threadFixture);
runTenantCommitConformance('sqlite (commit thread)', threadFixture);
