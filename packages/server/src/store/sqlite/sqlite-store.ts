/**
 * The embedded SQLite store (better-sqlite3, WAL), production-fit for one node.
 *
 * Two connections: one writer, used only inside `transaction` (BEGIN IMMEDIATE holds SQLite's single
 * write lock, which is what orders every tenant's seqs), and one reader for everything else, so a read
 * never sees a transaction that has not committed. `synchronous=FULL` (the default) fsyncs every commit,
 * so an acknowledged write survives a power cut; NORMAL survives a process crash only. Driver errors
 * reach callers translated (errors.ts): busy, full and I/O failures as UNAVAILABLE, as on PostgreSQL.
 */
import { mkdirSync, realpathSync } from 'node:fs';
import { dirname } from 'node:path';
import type {
  CollectionSettings,
  Conflict,
  Device,
  LogEvent,
  MutationResult,
  SyncRecord,
} from '@syncbridge/protocol';
import Database from 'better-sqlite3';
import type { SecretBox } from '../../auth/secret-box.ts';
import { sqliteFilter } from '../filter-sql.ts';
import {
  EVENT_COLUMNS,
  type EventRow,
  eventColumns,
  eventFromRow,
  jsonOnce,
  LOGGED_RECORD_COLUMNS,
  needsLoggedRecord,
  type RecordRow,
  recordFromRow,
  type StoredResult,
  storedResult,
  withLoggedRecord,
} from '../rows.ts';
import type {
  ApiKeyRow,
  ConflictQuery,
  EventCount,
  EventQuery,
  ListQuery,
  RecordKey,
  RetentionPolicy,
  Store,
  TenantBatch,
  VersionKey,
  WriteTx,
} from '../types.ts';
import { eventQueryConditions, recordKey, versionKey } from '../types.ts';
import { withSqliteErrors } from './errors.ts';
import { SqliteExpiryStore } from './expiry-store.ts';
import { SQLITE_MIGRATIONS } from './migrations.ts';
import { SqliteWebhookStore } from './webhook-store.ts';

export interface SqliteStoreOptions {
  file: string;
  synchronous?: 'FULL' | 'NORMAL';
  /** Seals webhook secrets at rest (see auth/secret-box.ts). */
  secretBox?: SecretBox | null;
  /**
   * How long a statement waits for a lock another connection (another process on the file) holds,
   * before it fails with UNAVAILABLE (default 10000 ms). better-sqlite3 waits synchronously.
   */
  busyTimeoutMs?: number;
  /** Caps the database at this many pages (PRAGMA max_page_count): writes past it fail with UNAVAILABLE. */
  maxPageCount?: number;
}

const RECORD_COLUMNS = 'collection, id, data, version, hlc, updated_at, updated_by, deleted';

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

function open(file: string, synchronous: string, busyTimeoutMs = 10_000): Database.Database {
  const db = new Database(file);
  db.pragma('journal_mode = WAL');
  db.pragma(`synchronous = ${synchronous}`);
  db.pragma(`busy_timeout = ${Math.max(0, Math.floor(busyTimeoutMs))}`);
  db.pragma(`wal_autocheckpoint = ${WAL_AUTOCHECKPOINT_PAGES}`);
  db.pragma(`journal_size_limit = ${WAL_SIZE_LIMIT_BYTES}`);
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

interface WriterQueue {
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

function writerQueueFor(file: string): WriterQueue {
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

export class SqliteStore implements Store {
  readonly kind = 'sqlite' as const;
  readonly webhooks: SqliteWebhookStore;
  readonly expiry: SqliteExpiryStore;
  private readonly writer: Database.Database;
  private readonly reader: Database.Database;
  private readonly stmts;
  private closed = false;
  /**
   * Serializes use of the writer connection, so a write outside `transaction` never joins an open one;
   * shared with the other instances of this process on the same file (see writerQueues).
   */
  private readonly writerQueue: WriterQueue;
  /** Filtered event queries, prepared once per shape (the clauses come from a fixed set). */
  private readonly eventQueries = new Map<string, Database.Statement<unknown[], EventRow>>();
  /** This instance's last queued write, awaited by close. */
  private lastWrite: Promise<unknown> = Promise.resolve();

  constructor(options: SqliteStoreOptions) {
    if (options.file !== ':memory:') mkdirSync(dirname(options.file), { recursive: true });
    const synchronous = options.synchronous ?? 'FULL';
    this.writer = open(options.file, synchronous, options.busyTimeoutMs);
    if (options.maxPageCount !== undefined) {
      this.writer.pragma(`max_page_count = ${Math.max(1, Math.floor(options.maxPageCount))}`);
    }
    this.writerQueue = writerQueueFor(options.file);
    this.migrateSync();
    this.reader = open(options.file, synchronous, options.busyTimeoutMs);
    const w = this.writer;
    const r = this.reader;
    this.stmts = {
      lockHead: w.prepare<[string], { seq: number; hooks_version: number; collections_version: number }>(
        'SELECT seq, hooks_version, collections_version FROM tenant_heads WHERE tenant = ?',
      ),
      // The index is named: without statistics the planner picks the primary key (tenant, seq) and reads
      // the tenant's whole log for every base version a merge needs. A record's versions grow with its
      // seqs, so walking its entries newest first reaches a recent base version after a few steps.
      versionData: w.prepare<[string, string, string, number], { data: string }>(
        `SELECT data FROM events INDEXED BY events_by_record
         WHERE tenant = ? AND kind = 'record' AND collection = ? AND record_id = ? AND version = ?
         ORDER BY seq DESC LIMIT 1`,
      ),
      getConflictW: w.prepare<[string, string], { doc: string }>(
        'SELECT doc FROM conflicts WHERE tenant = ? AND id = ?',
      ),
      getConflict: r.prepare<[string, string], { doc: string }>(
        'SELECT doc FROM conflicts WHERE tenant = ? AND id = ?',
      ),
      putConflict: w.prepare(
        `INSERT INTO conflicts (tenant, id, collection, status, created_at, doc) VALUES (?, ?, ?, ?, ?, ?)
         ON CONFLICT (tenant, id) DO UPDATE SET status = excluded.status, doc = excluded.doc`,
      ),
      setHead: w.prepare(
        'INSERT INTO tenant_heads (tenant, seq) VALUES (?, ?) ON CONFLICT (tenant) DO UPDATE SET seq = excluded.seq',
      ),
      getResult: w.prepare<[string, string], { result: string }>(
        'SELECT result FROM mutation_results WHERE tenant = ? AND key = ?',
      ),
      // The record an applied mutation's stored result leaves out: its log entry (rows.ts, storedResult).
      loggedRecord: w.prepare<[string, number, number], RecordRow>(
        `SELECT ${LOGGED_RECORD_COLUMNS('events', "'{}'")} FROM events
         WHERE tenant = ? AND seq = ? AND kind = 'record' AND version = ?`,
      ),
      // One row per statement: in a group commit of 50, a 50-row VALUES statement cost 20–50% more CPU
      // per row than 50 runs of this one (better-sqlite3, measured; see docs/benchmarks.md).
      putResult: w.prepare(
        'INSERT INTO mutation_results (tenant, key, result, created_at) VALUES (?, ?, ?, ?) ON CONFLICT DO NOTHING',
      ),
      getRecordW: w.prepare<[string, string, string], RecordRow>(
        `SELECT ${RECORD_COLUMNS} FROM records WHERE tenant = ? AND collection = ? AND id = ?`,
      ),
      upsertRecord: w.prepare(
        `INSERT INTO records (tenant, ${RECORD_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)
         ON CONFLICT (tenant, collection, id) DO UPDATE SET data = excluded.data, version = excluded.version,
         hlc = excluded.hlc, updated_at = excluded.updated_at, updated_by = excluded.updated_by, deleted = excluded.deleted`,
      ),
      insertEvent: w.prepare(
        `INSERT INTO events (tenant, ${EVENT_COLUMNS}) VALUES (${new Array(19).fill('?').join(', ')})`,
      ),
      head: r.prepare<[string], { seq: number }>('SELECT seq FROM tenant_heads WHERE tenant = ?'),
      events: r.prepare<[string, number, number], EventRow>(
        `SELECT ${EVENT_COLUMNS} FROM events WHERE tenant = ? AND seq > ? ORDER BY seq LIMIT ?`,
      ),
      getRecord: r.prepare<[string, string, string], RecordRow>(
        `SELECT ${RECORD_COLUMNS} FROM records WHERE tenant = ? AND collection = ? AND id = ?`,
      ),
      collections: r.prepare<[string], { name: string; settings: string }>(
        'SELECT name, settings FROM collections WHERE tenant = ? ORDER BY name',
      ),
      // A settings change bumps the tenant's collections version in the same transaction (TenantLock).
      bumpCollectionsVersion: w.prepare(
        `INSERT INTO tenant_heads (tenant, seq, collections_version) VALUES (?, 0, 1)
         ON CONFLICT (tenant) DO UPDATE SET collections_version = collections_version + 1`,
      ),
      putCollection: w.prepare(
        'INSERT INTO collections (tenant, name, settings) VALUES (?, ?, ?) ON CONFLICT (tenant, name) DO UPDATE SET settings = excluded.settings',
      ),
      findKey: r.prepare<[string], ApiKeyRow>('SELECT id, tenant, label FROM api_keys WHERE hash = ?'),
      createKey: w.prepare(
        'INSERT INTO api_keys (id, tenant, hash, label, created_at) VALUES (?, ?, ?, ?, ?)',
      ),
      saveCursor: w.prepare(
        `INSERT INTO cursors (tenant, user_id, device_id, seq, updated_at) VALUES (?, ?, ?, ?, ?)
         ON CONFLICT (tenant, user_id, device_id) DO UPDATE SET seq = max(seq, excluded.seq), updated_at = excluded.updated_at`,
      ),
      getCursor: r.prepare<[string, string, string], { seq: number }>(
        'SELECT seq FROM cursors WHERE tenant = ? AND user_id = ? AND device_id = ?',
      ),
    };
    this.expiry = new SqliteExpiryStore({
      writer: w,
      write: (fn) => this.exclusive(() => w.transaction(fn).immediate()),
    });
    this.webhooks = new SqliteWebhookStore({
      secretBox: options.secretBox ?? null,
      writer: w,
      reader: r,
      write: (fn) => this.exclusive(() => w.transaction(fn).immediate()),
      writeUnsynced: (fn) =>
        this.exclusive(() => {
          w.pragma('synchronous = NORMAL');
          try {
            return w.transaction(fn).immediate();
          } finally {
            w.pragma(`synchronous = ${synchronous}`);
          }
        }),
    });
    // Callers get driver errors translated (busy, full, I/O: UNAVAILABLE), as from every store.
    // biome-ignore lint/correctness/noConstructorReturn: the instance, seen through its error translator
    return withSqliteErrors(this, ['webhooks']);
  }

  private migrateSync(progress?: (message: string) => void): number {
    const db = this.writer;
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
    for (const migration of SQLITE_MIGRATIONS) {
      if (run.immediate(migration)) {
        applied += 1;
        progress?.(`applied migration ${migration.version}: ${migration.name}`);
      }
    }
    return applied;
  }

  async migrate(progress?: (message: string) => void): Promise<number> {
    return this.migrateSync(progress);
  }

  private exclusive<T>(fn: () => Promise<T> | T): Promise<T> {
    const queue = this.writerQueue;
    const run = queue.tail.then(fn, fn).finally(() => queue.pages.clear());
    this.lastWrite = run.catch(() => undefined);
    this.writerQueue.tail = this.lastWrite;
    return run;
  }

  transaction<T>(fn: (tx: WriteTx) => Promise<T>): Promise<T> {
    return this.exclusive(() => this.runTransaction(fn));
  }

  private async runTransaction<T>(fn: (tx: WriteTx) => Promise<T>): Promise<T> {
    const s = this.stmts;
    const tx: WriteTx = {
      lockTenant: async (tenant) => {
        const row = s.lockHead.get(tenant);
        return {
          head: row?.seq ?? 0,
          hooksVersion: row?.hooks_version ?? 0,
          collectionsVersion: row?.collections_version ?? 0,
        };
      },
      getResults: async (tenant, keys) => {
        const found = new Map<string, MutationResult>();
        for (const key of keys) {
          const row = s.getResult.get(tenant, key);
          if (!row) continue;
          const result = JSON.parse(row.result) as StoredResult;
          found.set(
            key,
            needsLoggedRecord(result)
              ? withLoggedRecord(result, s.loggedRecord.get(tenant, result.seq!, result.version!))
              : result,
          );
        }
        return found;
      },
      getRecords: async (tenant, keys: RecordKey[]) => {
        const found = new Map<string, SyncRecord>();
        for (const { collection, id } of keys) {
          const row = s.getRecordW.get(tenant, collection, id);
          if (row) found.set(recordKey(collection, id), recordFromRow(row));
        }
        return found;
      },
      getVersionData: async (tenant, keys: VersionKey[]) => {
        const found = new Map<string, Record<string, unknown>>();
        for (const { collection, id, version } of keys) {
          const row = s.versionData.get(tenant, collection, id, version);
          if (row)
            found.set(versionKey(collection, id, version), JSON.parse(row.data) as Record<string, unknown>);
        }
        return found;
      },
      getConflict: async (tenant, id) => {
        const row = s.getConflictW.get(tenant, id);
        return row ? (JSON.parse(row.doc) as Conflict) : null;
      },
      writeBatch: async (tenant, batch: TenantBatch) => {
        for (const c of batch.conflicts ?? []) {
          s.putConflict.run(tenant, c.id, c.collection, c.status, c.createdAt, JSON.stringify(c));
        }
        const json = jsonOnce();
        for (const r of batch.records) {
          s.upsertRecord.run(
            tenant,
            r.collection,
            r.id,
            json(r.data),
            r.version,
            r.hlc,
            r.updatedAt,
            r.updatedBy,
            r.deleted ? 1 : 0,
          );
        }
        for (const e of batch.events) s.insertEvent.run(...eventColumns(tenant, e, json));
        const now = new Date().toISOString();
        for (const { key, result } of batch.results) s.putResult.run(tenant, key, storedResult(result), now);
        if (batch.deliveries) this.webhooks.insertDeliveries(batch.deliveries);
        s.setHead.run(tenant, batch.head);
      },
    };
    this.writer.exec('BEGIN IMMEDIATE');
    try {
      const result = await fn(tx);
      this.writer.exec('COMMIT');
      return result;
    } catch (err) {
      if (this.writer.inTransaction) this.writer.exec('ROLLBACK');
      throw err;
    }
  }

  async readEvents(tenant: string, query: EventQuery): Promise<LogEvent[]> {
    const { clauses, params } = eventQueryConditions(query);
    const queue = this.writerQueue;
    const key = JSON.stringify([tenant, query.afterSeq, query.limit, clauses, params]);
    const shared = queue.pages.get(key);
    if (shared) return shared.slice();
    let page: LogEvent[];
    if (clauses.length === 0) {
      page = this.stmts.events.all(tenant, query.afterSeq, query.limit).map(eventFromRow);
    } else {
      const where = clauses.join(' AND ');
      let statement = this.eventQueries.get(where);
      if (!statement) {
        statement = this.reader.prepare<unknown[], EventRow>(
          `SELECT ${EVENT_COLUMNS} FROM events WHERE tenant = ? AND seq > ? AND ${where} ORDER BY seq LIMIT ?`,
        );
        this.eventQueries.set(where, statement);
      }
      page = statement.all(tenant, query.afterSeq, ...params, query.limit).map(eventFromRow);
    }
    queue.pages.set(key, page);
    if (!queue.pagesExpiry) {
      queue.pagesExpiry = true;
      setImmediate(() => {
        queue.pagesExpiry = false;
        queue.pages.clear();
      });
    }
    return page.slice();
  }

  async headSeq(tenant: string): Promise<number> {
    return this.stmts.head.get(tenant)?.seq ?? 0;
  }

  async getRecord(tenant: string, collection: string, id: string): Promise<SyncRecord | null> {
    const row = this.stmts.getRecord.get(tenant, collection, id);
    return row ? recordFromRow(row) : null;
  }

  private selectRecords(tenant: string, collection: string, query: ListQuery): SyncRecord[] {
    const where = sqliteFilter(query.filter);
    const params: unknown[] = [tenant, collection];
    let sql = `SELECT ${RECORD_COLUMNS} FROM records WHERE tenant = ? AND collection = ?`;
    if (!query.includeDeleted) sql += ' AND deleted = 0';
    if (query.after !== undefined) {
      sql += ' AND id > ?';
      params.push(query.after);
    }
    sql += `${where.sql} ORDER BY id LIMIT ?`;
    params.push(...where.params, query.limit);
    return this.reader
      .prepare<unknown[], RecordRow>(sql)
      .all(...params)
      .map(recordFromRow);
  }

  async listRecords(tenant: string, collection: string, query: ListQuery): Promise<SyncRecord[]> {
    return this.selectRecords(tenant, collection, query);
  }

  async snapshot(
    tenant: string,
    collection: string,
    filter: Record<string, string>,
  ): Promise<{ records: SyncRecord[]; cursor: number }> {
    return this.reader.transaction(() => {
      const cursor = this.stmts.head.get(tenant)?.seq ?? 0;
      const records = this.selectRecords(tenant, collection, {
        filter,
        includeDeleted: false,
        limit: Number.MAX_SAFE_INTEGER,
      });
      return { records, cursor };
    })();
  }

  async listConflicts(tenant: string, query: ConflictQuery): Promise<Conflict[]> {
    let sql = 'SELECT doc FROM conflicts WHERE tenant = ?';
    const params: unknown[] = [tenant];
    if (query.status !== 'all') {
      sql += ' AND status = ?';
      params.push(query.status);
    }
    if (query.collection) {
      sql += ' AND collection = ?';
      params.push(query.collection);
    }
    sql += ' ORDER BY created_at, id LIMIT ?';
    params.push(query.limit);
    return this.reader
      .prepare<unknown[], { doc: string }>(sql)
      .all(...params)
      .map((row) => JSON.parse(row.doc) as Conflict);
  }

  async getConflict(tenant: string, id: string): Promise<Conflict | null> {
    const row = this.stmts.getConflict.get(tenant, id);
    return row ? (JSON.parse(row.doc) as Conflict) : null;
  }

  async getCollections(tenant: string): Promise<Map<string, CollectionSettings>> {
    const rows = this.stmts.collections.all(tenant);
    return new Map(rows.map((row) => [row.name, JSON.parse(row.settings) as CollectionSettings]));
  }

  async putCollection(tenant: string, name: string, settings: CollectionSettings): Promise<void> {
    const json = JSON.stringify(settings);
    await this.exclusive(() =>
      this.writer
        .transaction(() => {
          this.stmts.bumpCollectionsVersion.run(tenant);
          this.stmts.putCollection.run(tenant, name, json);
        })
        .immediate(),
    );
  }

  async findApiKey(hash: string): Promise<ApiKeyRow | null> {
    return this.stmts.findKey.get(hash) ?? null;
  }

  async createApiKey(row: ApiKeyRow & { hash: string }): Promise<void> {
    await this.exclusive(() =>
      this.stmts.createKey.run(row.id, row.tenant, row.hash, row.label, new Date().toISOString()),
    );
  }

  async replaceApiKey(row: ApiKeyRow & { hash: string }): Promise<void> {
    await this.exclusive(() =>
      this.writer
        .prepare(
          `INSERT INTO api_keys (id, tenant, hash, label, created_at) VALUES (?, ?, ?, ?, ?)
           ON CONFLICT (id) DO UPDATE SET hash = excluded.hash, label = excluded.label,
             created_at = excluded.created_at`,
        )
        .run(row.id, row.tenant, row.hash, row.label, new Date().toISOString()),
    );
  }

  async deleteApiKey(id: string): Promise<boolean> {
    return this.exclusive(() => this.writer.prepare('DELETE FROM api_keys WHERE id = ?').run(id).changes > 0);
  }

  async saveCursor(tenant: string, user: string, device: string, seq: number): Promise<void> {
    await this.exclusive(() =>
      this.stmts.saveCursor.run(tenant, user, device, seq, new Date().toISOString()),
    );
  }

  async getCursor(tenant: string, user: string, device: string): Promise<number | null> {
    return this.stmts.getCursor.get(tenant, user, device)?.seq ?? null;
  }

  async putDevice(tenant: string, device: Device): Promise<void> {
    await this.exclusive(() =>
      this.writer
        .prepare(
          `INSERT INTO devices (tenant, user_id, id, doc) VALUES (?, ?, ?, ?)
           ON CONFLICT (tenant, user_id, id) DO UPDATE SET doc = excluded.doc`,
        )
        .run(tenant, device.user, device.id, JSON.stringify(device)),
    );
  }

  async getDevice(tenant: string, user: string, id: string): Promise<Device | null> {
    const row = this.reader
      .prepare<[string, string, string], { doc: string }>(
        'SELECT doc FROM devices WHERE tenant = ? AND user_id = ? AND id = ?',
      )
      .get(tenant, user, id);
    return row ? (JSON.parse(row.doc) as Device) : null;
  }

  async listDevices(tenant: string, user?: string): Promise<Device[]> {
    const rows =
      user === undefined
        ? this.reader
            .prepare<[string], { doc: string }>(
              'SELECT doc FROM devices WHERE tenant = ? ORDER BY user_id, id',
            )
            .all(tenant)
        : this.reader
            .prepare<[string, string], { doc: string }>(
              'SELECT doc FROM devices WHERE tenant = ? AND user_id = ? ORDER BY id',
            )
            .all(tenant, user);
    return rows.map((row) => JSON.parse(row.doc) as Device);
  }

  async deleteDevice(tenant: string, user: string, id: string): Promise<boolean> {
    return this.exclusive(() =>
      this.writer.transaction(() => {
        this.writer
          .prepare('DELETE FROM cursors WHERE tenant = ? AND user_id = ? AND device_id = ?')
          .run(tenant, user, id);
        return (
          this.writer
            .prepare('DELETE FROM devices WHERE tenant = ? AND user_id = ? AND id = ?')
            .run(tenant, user, id).changes > 0
        );
      })(),
    );
  }

  async countEventsAfter(tenant: string, afterSeq: number, limit: number): Promise<EventCount[]> {
    return this.reader
      .prepare<[string, number, number], EventCount>(
        `SELECT kind, collection, count(*) AS count
         FROM (SELECT kind, collection FROM events WHERE tenant = ? AND seq > ? ORDER BY seq LIMIT ?)
         GROUP BY kind, collection`,
      )
      .all(tenant, afterSeq, limit)
      .map((row) => ({ kind: row.kind, collection: row.collection ?? null, count: Number(row.count) }));
  }

  async compactHistory(tenant: string, collection: string, policy: RetentionPolicy): Promise<number> {
    const sql = `DELETE FROM events WHERE tenant = ? AND kind = 'record' AND collection = ?
         AND version < (SELECT r.version FROM records r
           WHERE r.tenant = events.tenant AND r.collection = events.collection AND r.id = events.record_id)
         AND (version <= (SELECT r.version FROM records r
           WHERE r.tenant = events.tenant AND r.collection = events.collection AND r.id = events.record_id) - ?
           OR ts < ?)`;
    const keep = policy.keepVersions ?? Number.MAX_SAFE_INTEGER;
    return this.exclusive(
      () => this.writer.prepare(sql).run(tenant, collection, keep, policy.before ?? '').changes,
    );
  }

  async pruneResults(before: string): Promise<number> {
    return this.exclusive(
      () => this.writer.prepare('DELETE FROM mutation_results WHERE created_at < ?').run(before).changes,
    );
  }

  async listTenants(): Promise<string[]> {
    return this.reader
      .prepare<[], { tenant: string }>('SELECT tenant FROM tenant_heads ORDER BY tenant')
      .all()
      .map((r) => r.tenant);
  }

  async listRecordCollections(tenant: string): Promise<string[]> {
    return this.reader
      .prepare<[string], { collection: string }>(
        'SELECT DISTINCT collection FROM records WHERE tenant = ? ORDER BY collection',
      )
      .all(tenant)
      .map((r) => r.collection);
  }

  async countOpenConflicts(): Promise<{ tenant: string; count: number }[]> {
    return this.reader
      .prepare<[], { tenant: string; count: number }>(
        "SELECT tenant, COUNT(*) AS count FROM conflicts WHERE status = 'open' GROUP BY tenant",
      )
      .all();
  }

  async ping(): Promise<void> {
    this.reader.prepare('SELECT 1').get();
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await this.lastWrite;
    this.reader.close();
    this.writer.close();
  }
}
