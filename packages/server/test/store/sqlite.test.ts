/** The Store conformance suite on SQLite: a fresh database file in a temporary directory per run. */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { SqliteStore } from '../../src/store/sqlite/sqlite-store.ts';
import { runStoreConformance } from './store-conformance.ts';

runStoreConformance('sqlite', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'syncbridge-store-'));
  const file = join(dir, 'syncbridge.db');
  return {
    store: new SqliteStore({ file }),
    reopen: async () => new SqliteStore({ file }),
    cleanup: () => rm(dir, { recursive: true, force: true }),
  };
});
