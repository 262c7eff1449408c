/**
 * Opening SQLite connections for the store (WAL, synchronous, busy timeout, checkpoint sizing), the
 * per-file writer queue every SqliteStore of this process shares, and migrations (the record filter's
 * SQL is compiled in ../filter-sql.ts). It must never hold domain logic or open a connection of its own outside `open`.
 */
import { realpathSync } from 'node:fs';
import type { LogEvent } from '@syncbridge/protocol';
import Database from 'better-sqlite3';
import type { SQLITE_MIGRATIONS } from './migrations.ts';

export const RECORD_COLUMNS = 'collection, id, data, version, hlc, updated_at, updated_by, deleted';

/**
 * WAL pages after which a commit copies the WAL back into the database file (SQLite's default: 1,000).
 * A group commit of 50 small puts writes about 90 pages, mostly the same hot index pages again, so at
 * 1,000 pages every 11th commit copied them back; at 10,000 (40 MiB of 4 KiB pages) a checkpoint copies
 * each hot page once for about 110 commits. The WAL stays bounded by it (a reader holding an old
 * snapshot can stretch it; `journal_size_limit` then shrinks the file back at the next reset), and
 * recovery after a crash reads at most that much WAL.
 */
const WAL_AUTOCHECKPOINT_PAGES = 10_000;
const WAL_SIZE_LIMIT_BYTES = 64 * 1024 * 1024;

/** The pragmas every connection of the store runs when it opens (the commit thread's too). */
export function connectionPragmas(synchronous: string, busyTimeoutMs = 10_000): string[] {
  return [
    'journal_mode = WAL',
    `synchronous = ${synchronous}`,
    `busy_timeout = ${Math.max(0, Math.floor(busyTimeoutMs))}`,
    `wal_autocheckpoint = ${WAL_AUTOCHECKPOINT_PAGES}`,
    `journal_size_limit = ${WAL_SIZE_LIMIT_BYTES}`,
  ];
}

/**
 * A connection to `file`. Given the store's `writer`, this opens its reader: a second connection on a
 * file, but the writer itself for `:memory:` (or ''), where every connection is a database of its own and
 * a second one would read an empty database. With one connection serving both roles, a read made while
 * a write transaction is open (awaiting its callback) sees that transaction's writes before they commit
 * (on a file it sees the last commit): `:memory:` is for tests and trials, not for serving clients.
 */
export function open(
  file: string,
  synchronous: string,
  busyTimeoutMs = 10_000,
  writer?: Database.Database,
): Database.Database {
  if (writer && (file === ':memory:' || file === '')) return writer;
  const db = new Database(file);
  for (const pragma of connectionPragmas(synchronous, busyTimeoutMs)) db.pragma(pragma);
  return db;
}

/**
 * Writer queues by database file, shared by every SqliteStore of this process on that file.
 * better-sqlite3 waits for SQLite's write lock synchronously (busy_timeout), blocking the event loop: if
 * a second instance in this process ran BEGIN IMMEDIATE while another one's transaction was open
 * (awaiting its callback), the holder could never reach COMMIT, and both would stall. So the writes of
 * one process to one file take turns here; other processes still wait on SQLite's lock.
 */
const writerQueues = new Map<string, WriterQueue>();

export interface WriterQueue {
  tail: Promise<unknown>;
  /**
   * Event pages read from this file in the current turn of the event loop, by tenant and query: when
   * thousands of clients re-subscribe from the same cursor at once (after a restart), they share one
   * read. Emptied after every write and at the end of the turn, so a page is never older than a read
   * made just before the last write; callers must not modify the events.
   */
  pages: Map<string, LogEvent[]>;
  pagesExpiry: boolean;
}

export function writerQueueFor(file: string): WriterQueue {
  const fresh = (): WriterQueue => ({ tail: Promise.resolve(), pages: new Map(), pagesExpiry: false });
  if (file === ':memory:' || file === '') return fresh();
  const key = realpathSync(file);
  let queue = writerQueues.get(key);
  if (!queue) {
    queue = fresh();
    writerQueues.set(key, queue);
  }
  return queue;
}

/** Applies the migrations not yet recorded in schema_migrations, each in its own transaction. */
export function runMigrations(
  db: Database.Database,
  migrations: typeof SQLITE_MIGRATIONS,
  progress?: (message: string) => void,
): number {
  db.exec(
    'CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at TEXT NOT NULL)',
  );
  let applied = 0;
  const run = db.transaction((m: (typeof SQLITE_MIGRATIONS)[number]) => {
    const done = db.prepare('SELECT 1 FROM schema_migrations WHERE version = ?').get(m.version);
    if (done) return false;
    db.exec(m.sql);
    db.prepare('INSERT INTO schema_migrations (version, name, applied_at) VALUES (?, ?, ?)').run(
      m.version,
      m.name,
      new Date().toISOString(),
    );
    return true;
  });
  for (const migration of migrations) {
    if (run.immediate(migration)) {
      applied += 1;
      progress?.(`applied migration ${migration.version}: ${migration.name}`);
    }
  }
  return applied;
}
