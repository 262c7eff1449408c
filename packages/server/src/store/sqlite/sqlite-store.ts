/**
 * The embedded SQLite store (better-sqlite3, WAL), production-fit for one node.
 *
 * Two connections: one writer, used only inside `transaction` (BEGIN IMMEDIATE holds SQLite's single
 * write lock, which is what orders every tenant's seqs), and one reader for everything else, so a read
 * never sees a transaction that has not committed. With `commitThread`, log commits take a third
 * connection on a thread of its own (commit-thread.ts): `commitTenant` computes a tenant's commit on the event loop
 * against the state this store remembers (../postgres/one-call-commit.ts) and the thread makes it
 * durable, checking that state under the write lock, so the event loop never waits for an fsync of the
 * log; the first commit of a tenant, and one whose state moved, runs in `transaction` as before. `synchronous=FULL` (the default) fsyncs every commit,
 * so an acknowledged write survives a power cut; NORMAL survives a process crash only. Driver errors
 * reach callers translated (errors.ts): busy, full and I/O failures as UNAVAILABLE, as on PostgreSQL.
 *
 * This file holds the log and records (transactions, event and record reads, conflicts, collections);
 * devices, cursors and API keys are in accounts.ts, maintenance reads and deletes in maintenance.ts,
 * opening a connection and the writer queue in connection.ts. It must never hold domain logic.
 */
import { mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import type {
  CollectionSettings,
  Conflict,
  Device,
  LogEvent,
  MutationResult,
  SyncRecord,
} from '@syncbridge/protocol';
import type Database from 'better-sqlite3';
import type { Logger } from 'pino';
import { sqliteFilter } from '../filter-sql.ts';
import { OneCallCommits } from '../postgres/one-call-commit.ts';
import {
  EVENT_COLUMNS,
  type EventRow,
  eventColumns,
  eventFromRow,
  needsLoggedRecord,
  type RecordRow,
  recordFromRow,
  type StoredResult,
  withLoggedRecord,
} from '../rows.ts';
import type { SecretBox } from '../secret-box.ts';
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
import { eventQueryConditions, recordKey } from '../types.ts';
import { SqliteAccounts } from './accounts.ts';
import { SqliteBranchStore } from './branches.ts';
import { batchOps } from './commit-ops.ts';
import { CommitThread, readerCommitReads, readVersionData, type VersionDataOf } from './commit-thread.ts';
import { open, RECORD_COLUMNS, runMigrations, type WriterQueue, writerQueueFor } from './connection.ts';
import { withSqliteErrors } from './errors.ts';
import { SqliteExpiryStore } from './expiry-store.ts';
import { SqliteHistory } from './history.ts';
import { SqliteMaintenance } from './maintenance.ts';
import { SQLITE_MIGRATIONS } from './migrations.ts';
import { SqliteSealedBackfill } from './sealed-backfill.ts';
import { type PackedEventRow, prepareStatements } from './statements.ts';
import { SqliteWebhookStore } from './webhook-store.ts';

export interface SqliteStoreOptions {
  file: string;
  synchronous?: 'FULL' | 'NORMAL';
  /** Seals webhook secrets at rest (see store/secret-box.ts). */
  secretBox?: SecretBox | null;
  /**
   * How long a statement waits for a lock another connection (another process on the file) holds,
   * before it fails with UNAVAILABLE (default 10000 ms). better-sqlite3 waits synchronously.
   */
  busyTimeoutMs?: number;
  /** Caps the database at this many pages (PRAGMA max_page_count): writes past it fail with UNAVAILABLE. */
  maxPageCount?: number;
  /** Log commits on a thread of their own (commit-thread.ts; default false; never for `:memory:`). */
  commitThread?: boolean;
  /** Hears what the store cannot tell a caller (the commit thread stopping). */
  logger?: Logger;
}

export class SqliteStore implements Store {
  readonly kind = 'sqlite' as const;
  readonly webhooks: SqliteWebhookStore;
  readonly expiry: SqliteExpiryStore;
  readonly branches: SqliteBranchStore;
  readonly sealedBackfill: SqliteSealedBackfill;
  /** Compaction of superseded versions (store/history). */
  readonly history: SqliteHistory;
  private readonly accounts: SqliteAccounts;
  private readonly maintenance: SqliteMaintenance;
  /** On a file, log commits computed ahead and made durable by the commit thread; else `transaction`. */
  readonly commitTenant?: Store['commitTenant'];
  /** One group commit at a time for every tenant (the log writer's single queue). */
  readonly singleWriter = true;
  private readonly thread: CommitThread | null = null;
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
  private readonly eventQueries = new Map<string, Database.Statement<unknown[], PackedEventRow>>();
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
    this.reader = open(options.file, synchronous, options.busyTimeoutMs, this.writer);
    const w = this.writer;
    const r = this.reader;
    this.stmts = prepareStatements(w, r);
    if (options.file !== ':memory:' && options.commitThread === true) {
      const thread = new CommitThread({ ...options, synchronous, exclusive: (fn) => this.exclusive(fn) });
      const onReader: VersionDataOf = (tenant, collection, id, row) =>
        this.history.dataOf(r, tenant, collection, id, row);
      const commits = new OneCallCommits(readerCommitReads(this.stmts, onReader), (call) =>
        thread.commit(call),
      );
      this.thread = thread;
      this.commitTenant = (tenant, fn, pipeline) =>
        commits.commit(tenant, fn, (f) => this.transaction(f), pipeline);
    }
    const parts = { writer: w, reader: r, exclusive: <T>(fn: () => T) => this.exclusive(fn) };
    this.accounts = new SqliteAccounts(parts);
    this.maintenance = new SqliteMaintenance(parts);
    this.branches = new SqliteBranchStore(parts);
    this.sealedBackfill = new SqliteSealedBackfill(parts);
    this.history = new SqliteHistory(parts);
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
    return withSqliteErrors(this, ['webhooks', 'branches', 'history']);
  }

  private migrateSync(progress?: (message: string) => void): number {
    return runMigrations(this.writer, SQLITE_MIGRATIONS, progress);
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
          const logged = needsLoggedRecord(result)
            ? await this.history.unpackRow(
                this.writer,
                tenant,
                s.loggedRecord.get(tenant, result.seq!, result.version!),
              )
            : null;
          found.set(key, logged === null ? result : withLoggedRecord(result, logged));
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
      getVersionData: (tenant, keys: VersionKey[]) =>
        readVersionData(s.versionData, tenant, keys, (t, collection, id, row) =>
          this.history.dataOf(this.writer, t, collection, id, row),
        ),
      getConflict: async (tenant, id) => {
        const row = s.getConflictW.get(tenant, id);
        return row ? (JSON.parse(row.doc) as Conflict) : null;
      },
      writeBatch: async (tenant, batch: TenantBatch) => {
        for (const [name, ...params] of batchOps(tenant, batch)) s.commit[name].run(...params);
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
    let rows: PackedEventRow[];
    if (clauses.length === 0) {
      rows = this.stmts.events.all(tenant, query.afterSeq, query.limit);
    } else {
      const where = clauses.join(' AND ');
      let statement = this.eventQueries.get(where);
      if (!statement) {
        statement = this.reader.prepare<unknown[], PackedEventRow>(
          `SELECT ${EVENT_COLUMNS}, packed FROM events WHERE tenant = ? AND seq > ? AND ${where} ORDER BY seq LIMIT ?`,
        );
        this.eventQueries.set(where, statement);
      }
      rows = statement.all(tenant, query.afterSeq, ...params, query.limit);
    }
    const page = rows.map(eventFromRow);
    // Compacted versions (store/history) are rebuilt from the record's later entries.
    await this.history.unpackEvents(this.reader, tenant, rows, page);
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

  findApiKey(hash: string): Promise<ApiKeyRow | null> {
    return this.accounts.findApiKey(hash);
  }

  createApiKey(row: ApiKeyRow & { hash: string }): Promise<void> {
    return this.accounts.createApiKey(row);
  }

  replaceApiKey(row: ApiKeyRow & { hash: string }): Promise<void> {
    return this.accounts.replaceApiKey(row);
  }

  deleteApiKey(id: string): Promise<boolean> {
    return this.accounts.deleteApiKey(id);
  }

  saveCursor(tenant: string, user: string, device: string, seq: number): Promise<void> {
    return this.accounts.saveCursor(tenant, user, device, seq);
  }

  getCursor(tenant: string, user: string, device: string): Promise<number | null> {
    return this.accounts.getCursor(tenant, user, device);
  }

  putDevice(tenant: string, device: Device): Promise<void> {
    return this.accounts.putDevice(tenant, device);
  }

  getDevice(tenant: string, user: string, id: string): Promise<Device | null> {
    return this.accounts.getDevice(tenant, user, id);
  }

  listDevices(tenant: string, user?: string): Promise<Device[]> {
    return this.accounts.listDevices(tenant, user);
  }

  deleteDevice(tenant: string, user: string, id: string): Promise<boolean> {
    return this.accounts.deleteDevice(tenant, user, id);
  }

  countEventsAfter(tenant: string, afterSeq: number, limit: number): Promise<EventCount[]> {
    return this.accounts.countEventsAfter(tenant, afterSeq, limit);
  }

  compactHistory(tenant: string, collection: string, policy: RetentionPolicy): Promise<number> {
    return this.maintenance.compactHistory(tenant, collection, policy);
  }

  pruneResults(before: string): Promise<number> {
    return this.maintenance.pruneResults(before);
  }

  listTenants(): Promise<string[]> {
    return this.maintenance.listTenants();
  }

  listRecordCollections(tenant: string): Promise<string[]> {
    return this.maintenance.listRecordCollections(tenant);
  }

  countOpenConflicts(): Promise<{ tenant: string; count: number }[]> {
    return this.maintenance.countOpenConflicts();
  }

  async ping(): Promise<void> {
    this.reader.prepare('SELECT 1').get();
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await this.thread?.close();
    await this.lastWrite;
    this.reader.close();
    this.writer.close();
  }
}
