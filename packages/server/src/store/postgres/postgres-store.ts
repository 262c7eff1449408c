/**
 * The PostgreSQL store (node-postgres pool): the Store for several server nodes sharing one database.
 *
 * Every write runs in one pooled connection's transaction; per-tenant ordering comes from a row lock on
 * `tenant_heads` (see `lockTenant`), so any number of nodes may write the same tenant at once. Reads
 * use any pooled connection and see only committed data.
 *
 * It must never: return another tenant's rows (every query is scoped by tenant), assign or commit a
 * seq without holding the tenant's head row lock, run one query per row of a batch, leak a driver
 * error type past `translateError` for a connection failure, or hand a broken connection back to the pool.
 *
 * Here: the log and records (transactions, event and record reads, conflicts); accounts.ts: devices,
 * cursors, API keys; maintenance.ts: migrations, settings, maintenance; pool.ts: query helpers.
 */
import type {
  CollectionSettings,
  Conflict,
  Device,
  LogEvent,
  MutationResult,
  SyncRecord,
} from '@syncbridge/protocol';
import pg from 'pg';
import { postgresFilter } from '../filter-sql.ts';
import {
  type EventRow,
  eventColumns,
  jsonOnce,
  LOGGED_RECORD_COLUMNS,
  needsLoggedRecord,
  type RecordRow,
  recordFromRow,
  type StoredResult,
  storedResult,
  withLoggedRecord,
} from '../rows.ts';
import type { SecretBox } from '../secret-box.ts';
import type {
  ApiKeyRow,
  CommitPipeline,
  ConflictQuery,
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
import { PostgresAccounts } from './accounts.ts';
import { PostgresBranchStore } from './branches.ts';
import { PostgresExpiryStore } from './expiry-store.ts';
import { dataOf, PostgresHistory, unpackEvents, unpackRow, type VersionRow } from './history.ts';
import { PostgresMaintenance } from './maintenance.ts';
import { commitPayload, OneCallCommits } from './one-call-commit.ts';
import { type Queryable, query, quoteIdent, typeParser } from './pool.ts';
import { PostgresSealedBackfill } from './sealed-backfill.ts';
import {
  columnArrays,
  EVENT_COLUMNS,
  RECORD_COLUMNS,
  recordArrays,
  translateError,
  WRITE_BATCH,
} from './sql.ts';
import { insertDeliveries, PostgresWebhookStore } from './webhook-store.ts';

export interface PostgresStoreOptions {
  connectionString: string;
  /** PostgreSQL schema holding every table; created by `migrate` if missing. Default: the search_path. */
  schema?: string;
  poolSize?: number;
  /** Seals webhook secrets at rest (see store/secret-box.ts). */
  secretBox?: SecretBox | null;
  /**
   * How long a statement waits for a lock another connection holds before it fails with UNAVAILABLE
   * (PostgreSQL's lock_timeout; default: it waits as long as it takes, as nodes of a cluster should).
   */
  busyTimeoutMs?: number;
}

export class PostgresStore implements Store {
  readonly kind = 'postgres' as const;
  readonly webhooks: PostgresWebhookStore;
  readonly expiry: PostgresExpiryStore;
  readonly branches: PostgresBranchStore;
  readonly sealedBackfill: PostgresSealedBackfill;
  readonly history: PostgresHistory; // compaction of superseded versions (store/history)
  private readonly accounts: PostgresAccounts;
  private readonly maintenance: PostgresMaintenance;
  private readonly pool: pg.Pool;
  private readonly schema: string | undefined;
  private readonly oneCall: OneCallCommits;
  private closed = false;

  constructor(options: PostgresStoreOptions) {
    if (options.schema !== undefined && !/^[A-Za-z_][A-Za-z0-9_]{0,62}$/.test(options.schema)) {
      throw new Error(`invalid PostgreSQL schema name: ${options.schema}`);
    }
    this.schema = options.schema;
    const settings: string[] = [];
    if (options.schema) settings.push(`-c search_path=${quoteIdent(options.schema)}`);
    if (options.busyTimeoutMs !== undefined) {
      settings.push(`-c lock_timeout=${Math.max(1, Math.floor(options.busyTimeoutMs))}`);
    }
    this.pool = new pg.Pool({
      connectionString: options.connectionString,
      max: options.poolSize ?? 10,
      connectionTimeoutMillis: 10_000,
      types: { getTypeParser: typeParser },
      // Applied by the server to every pooled connection when it opens.
      ...(settings.length > 0 ? { options: settings.join(' ') } : {}),
    });
    // An idle client whose connection dies emits 'error' on the pool; the pool drops that client, and
    // the next query reports the outage. Without a listener the error would crash the process.
    this.pool.on('error', () => {});
    const parts = { pool: this.pool, inTransaction: this.inTransaction.bind(this) };
    this.accounts = new PostgresAccounts(parts);
    this.maintenance = new PostgresMaintenance(parts);
    this.sealedBackfill = new PostgresSealedBackfill(parts);
    this.history = new PostgresHistory(parts);
    this.oneCall = new OneCallCommits(this.writeTx(this.pool), async (commit) => {
      // Named: each pooled connection parses and plans the call once.
      const result = await this.pool
        .query<{ outcome: 'committed' | 'moved' }>({
          name: 'syncbridge_commit',
          text: 'SELECT syncbridge_commit($1::jsonb) AS outcome',
          values: [commitPayload(commit)],
        })
        .catch((err: unknown) => {
          throw translateError(err);
        });
      return result.rows[0]!.outcome;
    });
    this.branches = new PostgresBranchStore(this.pool);
    this.expiry = new PostgresExpiryStore((sql, params) => query(this.pool, sql, params));
    this.webhooks = new PostgresWebhookStore({
      secretBox: options.secretBox ?? null,
      query: (sql, params) => query(this.pool, sql, params),
      transaction: (fn) =>
        this.inTransaction('BEGIN ISOLATION LEVEL READ COMMITTED', (client) =>
          fn((sql, params) => query(client, sql, params)),
        ),
    });
  }

  private async connect(): Promise<pg.PoolClient> {
    try {
      return await this.pool.connect();
    } catch (err) {
      throw translateError(err);
    }
  }

  /** Runs fn in a transaction on one client; ROLLBACK on error; a client that failed is destroyed. */
  private async inTransaction<T>(begin: string, fn: (client: pg.PoolClient) => Promise<T>): Promise<T> {
    const client = await this.connect();
    let broken: Error | undefined;
    try {
      await query(client, begin);
      const result = await fn(client);
      await query(client, 'COMMIT');
      return result;
    } catch (err) {
      try {
        await client.query('ROLLBACK');
      } catch (rollbackError) {
        broken = rollbackError instanceof Error ? rollbackError : new Error(String(rollbackError));
      }
      throw translateError(err);
    } finally {
      client.release(broken);
    }
  }

  migrate(progress?: (message: string) => void): Promise<number> {
    return this.maintenance.migrate(this.schema, progress);
  }

  transaction<T>(fn: (tx: WriteTx) => Promise<T>): Promise<T> {
    // READ COMMITTED explicitly, whatever default_transaction_isolation says: lockTenant relies on it.
    return this.inTransaction('BEGIN ISOLATION LEVEL READ COMMITTED', (client) => fn(this.writeTx(client)));
  }

  commitTenant<T>(tenant: string, fn: (tx: WriteTx) => Promise<T>, pipeline?: CommitPipeline): Promise<T> {
    return this.oneCall.commit(tenant, fn, (f) => this.transaction(f), pipeline);
  }

  /** Reads (records, versions) also run on the pool, outside a transaction: see one-call-commit.ts. */
  private writeTx(client: Queryable): WriteTx {
    return {
      lockTenant: async (tenant) => {
        // Why this makes each tenant's seqs gap-free and committed in order, with any number of writers
        // on any number of connections and nodes:
        // - Every writer of a tenant takes this row lock before it reads any state or assigns a seq; the
        //   INSERT makes sure the row exists (a concurrent INSERT of the same new tenant waits for the
        //   first one's commit, then updates it), so there is always a row to lock. syncbridge_commit
        //   (one-call-commit.ts) takes the same lock with FOR UPDATE.
        // - The lock is held until this transaction's COMMIT or ROLLBACK.
        // - The next writer blocks on the lock; when it gets it, READ COMMITTED re-reads the latest
        //   committed version of the row (the one the previous writer's UPDATE in writeBatch produced), so
        //   it sees head n and assigns n+1 only after seq n has committed and become visible.
        // - A transaction that rolls back never advanced the committed head, so the next writer reuses its
        //   seqs and no gap appears.
        // Hence readers never see seq n+1 without seq n. A transaction that locks several tenants must
        // lock them in a consistent order, or PostgreSQL will abort one of them as a deadlock.
        // One statement does both: ON CONFLICT DO UPDATE locks the existing row as FOR UPDATE would
        // (waiting for its holder, then reading its latest committed version) and returns it.
        const rows = await query<{ seq: string; hooks_version: string; collections_version: string }>(
          client,
          `INSERT INTO tenant_heads (tenant, seq) VALUES ($1, 0)
           ON CONFLICT (tenant) DO UPDATE SET seq = tenant_heads.seq
           RETURNING seq, hooks_version, collections_version`,
          [tenant],
        );
        return {
          head: Number(rows[0].seq),
          hooksVersion: Number(rows[0].hooks_version),
          collectionsVersion: Number(rows[0].collections_version),
        };
      },
      getResults: async (tenant, keys) => {
        const found = new Map<string, MutationResult>();
        if (keys.length === 0) return found;
        // An applied mutation's result is stored without its record (rows.ts, storedResult): its log
        // entry, joined here by seq, holds it.
        const rows = await query<
          { key: string; result: string; seq: string; packed: Buffer | null } & RecordRow
        >(
          client,
          `SELECT r.key, r.result, ${LOGGED_RECORD_COLUMNS('e', "'{}'::jsonb")}, e.seq AS seq, e.packed AS packed
           FROM mutation_results r LEFT JOIN events e ON r.result ? 'recordInLog' AND e.tenant = r.tenant
             AND e.seq = (r.result ->> 'seq')::bigint AND e.kind = 'record'
             AND e.version = (r.result ->> 'version')::bigint
           WHERE r.tenant = $1 AND r.key = ANY($2::text[])`,
          [tenant, keys],
        );
        for (const row of rows) {
          const result = JSON.parse(row.result) as StoredResult;
          found.set(
            row.key,
            needsLoggedRecord(result)
              ? withLoggedRecord(result, await unpackRow(client, tenant, row))
              : result,
          );
        }
        return found;
      },
      getRecords: async (tenant, keys: RecordKey[]) => {
        const found = new Map<string, SyncRecord>();
        if (keys.length === 0) return found;
        const rows = await query<RecordRow>(
          client,
          `SELECT ${RECORD_COLUMNS} FROM records WHERE tenant = $1
           AND (collection, id) IN (SELECT * FROM unnest($2::text[], $3::text[]))`,
          [tenant, keys.map((k) => k.collection), keys.map((k) => k.id)],
        );
        for (const row of rows) found.set(recordKey(row.collection, row.id), recordFromRow(row));
        return found;
      },
      getVersionData: async (tenant, keys: VersionKey[]) => {
        const found = new Map<string, Record<string, unknown>>();
        if (keys.length === 0) return found;
        // A record's versions grow with its seqs: each key walks events_by_record newest first and stops
        // at its version, a few steps for a recent base.
        const rows = await query<VersionRow>(
          client,
          `SELECT k.collection, k.record_id, k.version, e.seq, e.data, e.packed
           FROM unnest($2::text[], $3::text[], $4::bigint[]) AS k (collection, record_id, version)
           CROSS JOIN LATERAL (
             SELECT seq, data, packed FROM events WHERE tenant = $1 AND kind = 'record' AND collection = k.collection
               AND record_id = k.record_id AND version = k.version ORDER BY seq DESC LIMIT 1
           ) AS e`,
          [tenant, keys.map((k) => k.collection), keys.map((k) => k.id), keys.map((k) => k.version)],
        );
        for (const row of rows) {
          const data = await dataOf(client, tenant, row.collection, row.record_id, row);
          found.set(versionKey(row.collection, row.record_id, Number(row.version)), data);
        }
        return found;
      },
      getConflict: (tenant, id) => this.selectConflict(client, tenant, id),
      writeBatch: async (tenant, batch: TenantBatch) => {
        for (const c of batch.conflicts ?? []) {
          await query(
            client,
            `INSERT INTO conflicts (tenant, id, collection, status, created_at, doc) VALUES ($1, $2, $3, $4, $5, $6)
             ON CONFLICT (tenant, id) DO UPDATE SET status = excluded.status, doc = excluded.doc`,
            [tenant, c.id, c.collection, c.status, c.createdAt, JSON.stringify(c)],
          );
        }
        if (batch.deliveries) {
          await insertDeliveries((sql, params) => query(client, sql, params), batch.deliveries);
        }
        // Records, log entries, results and the new head in one statement: one round trip.
        const json = jsonOnce();
        const rows = batch.events.map((e) => eventColumns(tenant, e, json).slice(1));
        const updated = await query<{ tenant: string }>(client, WRITE_BATCH, [
          tenant,
          ...recordArrays(batch.records, json),
          ...columnArrays(rows, 18),
          batch.results.map((r) => r.key),
          batch.results.map((r) => storedResult(r.result)),
          batch.head,
        ]);
        if (updated.length === 0) throw new Error(`writeBatch for tenant ${tenant} without lockTenant`);
      },
    };
  }

  async readEvents(tenant: string, q: EventQuery): Promise<LogEvent[]> {
    const { clauses, params } = eventQueryConditions(q);
    let n = 2;
    const where = clauses.map((c) => ` AND ${c.replace('?', () => `$${++n}`)}`).join('');
    const rows = await query<EventRow & { packed: Buffer | null }>(
      this.pool,
      `SELECT ${EVENT_COLUMNS}, packed FROM events WHERE tenant = $1 AND seq > $2${where} ORDER BY seq LIMIT $${n + 1}`,
      [tenant, q.afterSeq, ...params, q.limit],
    );
    // Compacted versions (store/history) are rebuilt from the record's later entries.
    return unpackEvents(this.pool, tenant, rows);
  }

  private async head(db: Queryable, tenant: string): Promise<number> {
    const rows = await query<{ seq: string }>(db, 'SELECT seq FROM tenant_heads WHERE tenant = $1', [tenant]);
    return rows.length ? Number(rows[0].seq) : 0;
  }

  headSeq(tenant: string): Promise<number> {
    return this.head(this.pool, tenant);
  }

  async getRecord(tenant: string, collection: string, id: string): Promise<SyncRecord | null> {
    const rows = await query<RecordRow>(
      this.pool,
      `SELECT ${RECORD_COLUMNS} FROM records WHERE tenant = $1 AND collection = $2 AND id = $3`,
      [tenant, collection, id],
    );
    return rows.length ? recordFromRow(rows[0]) : null;
  }

  /** `limit` null means no limit. */
  private async selectRecords(
    db: Queryable,
    tenant: string,
    collection: string,
    q: Omit<ListQuery, 'limit'> & { limit: number | null },
  ): Promise<SyncRecord[]> {
    const params: unknown[] = [tenant, collection];
    let sql = `SELECT ${RECORD_COLUMNS} FROM records WHERE tenant = $1 AND collection = $2`;
    if (!q.includeDeleted) sql += ' AND NOT deleted';
    if (q.after !== undefined) {
      params.push(q.after);
      sql += ` AND id > $${params.length}`;
    }
    const where = postgresFilter(q.filter, params.length + 1);
    params.push(...where.params, q.limit);
    sql += `${where.sql} ORDER BY id LIMIT $${params.length}`;
    return (await query<RecordRow>(db, sql, params)).map(recordFromRow);
  }

  listRecords(tenant: string, collection: string, q: ListQuery): Promise<SyncRecord[]> {
    return this.selectRecords(this.pool, tenant, collection, q);
  }

  snapshot(
    tenant: string,
    collection: string,
    filter: Record<string, string>,
  ): Promise<{ records: SyncRecord[]; cursor: number }> {
    // One REPEATABLE READ snapshot for both reads: the records are exactly the state at `cursor`.
    return this.inTransaction('BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY', async (client) => {
      const cursor = await this.head(client, tenant);
      const records = await this.selectRecords(client, tenant, collection, {
        filter,
        includeDeleted: false,
        limit: null,
      });
      return { records, cursor };
    });
  }

  private async selectConflict(db: Queryable, tenant: string, id: string): Promise<Conflict | null> {
    const rows = await query<{ doc: string }>(db, 'SELECT doc FROM conflicts WHERE tenant = $1 AND id = $2', [
      tenant,
      id,
    ]);
    return rows[0] ? (JSON.parse(rows[0].doc) as Conflict) : null;
  }

  getConflict(tenant: string, id: string): Promise<Conflict | null> {
    return this.selectConflict(this.pool, tenant, id);
  }

  async listConflicts(tenant: string, q: ConflictQuery): Promise<Conflict[]> {
    const params: unknown[] = [tenant];
    let sql = 'SELECT doc FROM conflicts WHERE tenant = $1';
    if (q.status !== 'all') {
      params.push(q.status);
      sql += ` AND status = $${params.length}`;
    }
    if (q.collection) {
      params.push(q.collection);
      sql += ` AND collection = $${params.length}`;
    }
    params.push(q.limit);
    sql += ` ORDER BY created_at, id LIMIT $${params.length}`;
    return (await query<{ doc: string }>(this.pool, sql, params)).map(
      (row) => JSON.parse(row.doc) as Conflict,
    );
  }

  // Devices, cursors and API keys (accounts.ts); maintenance and tenant-wide reads (maintenance.ts).
  readonly findApiKey = (hash: string) => this.accounts.findApiKey(hash);
  readonly createApiKey = (row: ApiKeyRow & { hash: string }) => this.accounts.createApiKey(row);
  readonly replaceApiKey = (row: ApiKeyRow & { hash: string }) => this.accounts.replaceApiKey(row);
  readonly deleteApiKey = (id: string) => this.accounts.deleteApiKey(id);
  readonly saveCursor = (tenant: string, user: string, device: string, seq: number) =>
    this.accounts.saveCursor(tenant, user, device, seq);
  readonly getCursor = (tenant: string, user: string, device: string) =>
    this.accounts.getCursor(tenant, user, device);
  readonly putDevice = (tenant: string, device: Device) => this.accounts.putDevice(tenant, device);
  readonly getDevice = (tenant: string, user: string, id: string) =>
    this.accounts.getDevice(tenant, user, id);
  readonly listDevices = (tenant: string, user?: string) => this.accounts.listDevices(tenant, user);
  readonly deleteDevice = (tenant: string, user: string, id: string) =>
    this.accounts.deleteDevice(tenant, user, id);
  readonly countEventsAfter = (tenant: string, afterSeq: number, limit: number) =>
    this.accounts.countEventsAfter(tenant, afterSeq, limit);
  readonly compactHistory = (tenant: string, collection: string, policy: RetentionPolicy) =>
    this.maintenance.compactHistory(tenant, collection, policy);
  readonly pruneResults = (before: string) => this.maintenance.pruneResults(before);
  readonly listTenants = () => this.maintenance.listTenants();
  readonly listRecordCollections = (tenant: string) => this.maintenance.listRecordCollections(tenant);
  readonly countOpenConflicts = () => this.maintenance.countOpenConflicts();
  readonly getCollections = (tenant: string) => this.maintenance.getCollections(tenant);
  readonly putCollection = (tenant: string, name: string, settings: CollectionSettings) =>
    this.maintenance.putCollection(tenant, name, settings);

  readonly ping = async (): Promise<void> => void (await query(this.pool, 'SELECT 1'));

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await this.pool.end();
  }
}
