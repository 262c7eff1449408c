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
import type { SecretBox } from '../../auth/secret-box.ts';
import {
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
  CommitPipeline,
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
import { PostgresExpiryStore } from './expiry-store.ts';
import { POSTGRES_MIGRATIONS } from './migrations.ts';
import { OneCallCommits } from './one-call-commit.ts';
import {
  columnArrays,
  EVENT_COLUMNS,
  filterSql,
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
  /** Seals webhook secrets at rest (see auth/secret-box.ts). */
  secretBox?: SecretBox | null;
  /**
   * How long a statement waits for a lock another connection holds before it fails with UNAVAILABLE
   * (PostgreSQL's lock_timeout; default: it waits as long as it takes, as nodes of a cluster should).
   */
  busyTimeoutMs?: number;
}

/** Key of the advisory lock `migrate` holds, so nodes starting at once apply each migration once. */
const MIGRATION_LOCK = 0x53796e63; // "Sync"

type Queryable = pg.Pool | pg.PoolClient;

const JSONB_OID = 3802;

/**
 * jsonb arrives as its JSON text, like SQLite's TEXT columns, for rows.ts's parseJson: node-postgres
 * would parse it, and parseJson would then take a JSON string value ("abc") for JSON text to parse again.
 * Scoped to this store's pool; the process-wide pg.types are left alone.
 */
const typeParser = ((oid: number, format?: string) =>
  oid === JSONB_OID
    ? (value: string) => value
    : pg.types.getTypeParser(oid, format as 'text')) as typeof pg.types.getTypeParser;

async function query<R extends pg.QueryResultRow>(
  db: Queryable,
  sql: string,
  params?: unknown[],
): Promise<R[]> {
  try {
    return (await db.query<R>(sql, params)).rows;
  } catch (err) {
    throw translateError(err);
  }
}

function quoteIdent(name: string): string {
  return `"${name}"`;
}

export class PostgresStore implements Store {
  readonly kind = 'postgres' as const;
  readonly webhooks: PostgresWebhookStore;
  readonly expiry: PostgresExpiryStore;
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
    this.oneCall = new OneCallCommits(this.writeTx(this.pool), async (payload) => {
      // Named: each pooled connection parses and plans the call once.
      const result = await this.pool
        .query<{ outcome: 'committed' | 'moved' }>({
          name: 'syncbridge_commit',
          text: 'SELECT syncbridge_commit($1::jsonb) AS outcome',
          values: [payload],
        })
        .catch((err: unknown) => {
          throw translateError(err);
        });
      return result.rows[0]!.outcome;
    });
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

  async migrate(progress?: (message: string) => void): Promise<number> {
    let applied = 0;
    // One transaction per migration, each under the advisory lock: a node that waited for the lock
    // re-reads schema_migrations and finds the migration another node just applied.
    for (;;) {
      const done = await this.inTransaction('BEGIN', async (client) => {
        await query(client, 'SELECT pg_advisory_xact_lock($1::bigint)', [MIGRATION_LOCK]);
        if (this.schema) await query(client, `CREATE SCHEMA IF NOT EXISTS ${quoteIdent(this.schema)}`);
        await query(
          client,
          `CREATE TABLE IF NOT EXISTS schema_migrations (
             version integer PRIMARY KEY, name text NOT NULL, applied_at timestamptz NOT NULL DEFAULT now())`,
        );
        const rows = await query<{ version: number }>(client, 'SELECT version FROM schema_migrations');
        const versions = new Set(rows.map((row) => row.version));
        const next = POSTGRES_MIGRATIONS.find((m) => !versions.has(m.version));
        if (!next) return null;
        await query(client, next.sql);
        await query(client, 'INSERT INTO schema_migrations (version, name) VALUES ($1, $2)', [
          next.version,
          next.name,
        ]);
        return next;
      });
      if (!done) return applied;
      applied += 1;
      progress?.(`applied migration ${done.version}: ${done.name}`);
    }
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
        const rows = await query<{ key: string; result: string } & RecordRow>(
          client,
          `SELECT r.key, r.result, ${LOGGED_RECORD_COLUMNS('e', "'{}'::jsonb")}
           FROM mutation_results r LEFT JOIN events e ON r.result ? 'recordInLog' AND e.tenant = r.tenant
             AND e.seq = (r.result ->> 'seq')::bigint AND e.kind = 'record'
             AND e.version = (r.result ->> 'version')::bigint
           WHERE r.tenant = $1 AND r.key = ANY($2::text[])`,
          [tenant, keys],
        );
        for (const row of rows) {
          const result = JSON.parse(row.result) as StoredResult;
          found.set(row.key, needsLoggedRecord(result) ? withLoggedRecord(result, row) : result);
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
        const rows = await query<{ collection: string; record_id: string; version: string; data: string }>(
          client,
          `SELECT k.collection, k.record_id, k.version, e.data
           FROM unnest($2::text[], $3::text[], $4::bigint[]) AS k (collection, record_id, version)
           CROSS JOIN LATERAL (
             SELECT data FROM events WHERE tenant = $1 AND kind = 'record' AND collection = k.collection
               AND record_id = k.record_id AND version = k.version ORDER BY seq DESC LIMIT 1
           ) AS e`,
          [tenant, keys.map((k) => k.collection), keys.map((k) => k.id), keys.map((k) => k.version)],
        );
        for (const row of rows) {
          found.set(versionKey(row.collection, row.record_id, Number(row.version)), JSON.parse(row.data));
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
    const rows = await query<EventRow>(
      this.pool,
      `SELECT ${EVENT_COLUMNS} FROM events WHERE tenant = $1 AND seq > $2${where} ORDER BY seq LIMIT $${n + 1}`,
      [tenant, q.afterSeq, ...params, q.limit],
    );
    return rows.map(eventFromRow);
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
    const where = filterSql(q.filter, params.length + 1);
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

  async getCollections(tenant: string): Promise<Map<string, CollectionSettings>> {
    const rows = await query<{ name: string; settings: string }>(
      this.pool,
      'SELECT name, settings FROM collections WHERE tenant = $1 ORDER BY name',
      [tenant],
    );
    return new Map(rows.map((row) => [row.name, JSON.parse(row.settings) as CollectionSettings]));
  }

  async putCollection(tenant: string, name: string, settings: CollectionSettings): Promise<void> {
    // The version first: it takes the tenant's head row lock in the order commits take it, so a commit
    // that locks the tenant after this change has committed reads the new version (TenantLock).
    await this.inTransaction('BEGIN', async (client) => {
      await query(
        client,
        `INSERT INTO tenant_heads (tenant, seq, collections_version) VALUES ($1, 0, 1)
         ON CONFLICT (tenant) DO UPDATE SET collections_version = tenant_heads.collections_version + 1`,
        [tenant],
      );
      await query(
        client,
        `INSERT INTO collections (tenant, name, settings) VALUES ($1, $2, $3::jsonb)
         ON CONFLICT (tenant, name) DO UPDATE SET settings = excluded.settings`,
        [tenant, name, JSON.stringify(settings)],
      );
    });
  }

  async findApiKey(hash: string): Promise<ApiKeyRow | null> {
    const rows = await query<ApiKeyRow>(this.pool, 'SELECT id, tenant, label FROM api_keys WHERE hash = $1', [
      hash,
    ]);
    return rows[0] ?? null;
  }

  async createApiKey(row: ApiKeyRow & { hash: string }): Promise<void> {
    await query(this.pool, 'INSERT INTO api_keys (id, tenant, hash, label) VALUES ($1, $2, $3, $4)', [
      row.id,
      row.tenant,
      row.hash,
      row.label,
    ]);
  }

  async replaceApiKey(row: ApiKeyRow & { hash: string }): Promise<void> {
    await query(
      this.pool,
      `INSERT INTO api_keys (id, tenant, hash, label) VALUES ($1, $2, $3, $4)
       ON CONFLICT (id) DO UPDATE SET hash = excluded.hash, label = excluded.label, created_at = now()`,
      [row.id, row.tenant, row.hash, row.label],
    );
  }

  async deleteApiKey(id: string): Promise<boolean> {
    const rows = await query(this.pool, 'DELETE FROM api_keys WHERE id = $1 RETURNING id', [id]);
    return rows.length > 0;
  }

  async saveCursor(tenant: string, user: string, device: string, seq: number): Promise<void> {
    await query(
      this.pool,
      `INSERT INTO cursors (tenant, user_id, device_id, seq, updated_at) VALUES ($1, $2, $3, $4, now())
       ON CONFLICT (tenant, user_id, device_id)
       DO UPDATE SET seq = GREATEST(cursors.seq, excluded.seq), updated_at = excluded.updated_at`,
      [tenant, user, device, seq],
    );
  }

  async getCursor(tenant: string, user: string, device: string): Promise<number | null> {
    const rows = await query<{ seq: string }>(
      this.pool,
      'SELECT seq FROM cursors WHERE tenant = $1 AND user_id = $2 AND device_id = $3',
      [tenant, user, device],
    );
    return rows.length ? Number(rows[0].seq) : null;
  }

  async putDevice(tenant: string, device: Device): Promise<void> {
    await query(
      this.pool,
      `INSERT INTO devices (tenant, user_id, id, doc) VALUES ($1, $2, $3, $4)
       ON CONFLICT (tenant, user_id, id) DO UPDATE SET doc = excluded.doc`,
      [tenant, device.user, device.id, JSON.stringify(device)],
    );
  }

  async getDevice(tenant: string, user: string, id: string): Promise<Device | null> {
    const rows = await query<{ doc: string }>(
      this.pool,
      'SELECT doc FROM devices WHERE tenant = $1 AND user_id = $2 AND id = $3',
      [tenant, user, id],
    );
    return rows[0] ? (JSON.parse(rows[0].doc) as Device) : null;
  }

  async listDevices(tenant: string, user?: string): Promise<Device[]> {
    const rows =
      user === undefined
        ? await query<{ doc: string }>(
            this.pool,
            'SELECT doc FROM devices WHERE tenant = $1 ORDER BY user_id, id',
            [tenant],
          )
        : await query<{ doc: string }>(
            this.pool,
            'SELECT doc FROM devices WHERE tenant = $1 AND user_id = $2 ORDER BY id',
            [tenant, user],
          );
    return rows.map((row) => JSON.parse(row.doc) as Device);
  }

  async deleteDevice(tenant: string, user: string, id: string): Promise<boolean> {
    return this.inTransaction('BEGIN', async (client) => {
      await query(client, 'DELETE FROM cursors WHERE tenant = $1 AND user_id = $2 AND device_id = $3', [
        tenant,
        user,
        id,
      ]);
      const gone = await query(
        client,
        'DELETE FROM devices WHERE tenant = $1 AND user_id = $2 AND id = $3 RETURNING id',
        [tenant, user, id],
      );
      return gone.length > 0;
    });
  }

  async countEventsAfter(tenant: string, afterSeq: number, limit: number): Promise<EventCount[]> {
    const rows = await query<{ kind: 'record' | 'event'; collection: string | null; count: string }>(
      this.pool,
      `SELECT kind, collection, count(*) AS count
       FROM (SELECT kind, collection FROM events WHERE tenant = $1 AND seq > $2 ORDER BY seq LIMIT $3) AS e
       GROUP BY kind, collection`,
      [tenant, afterSeq, limit],
    );
    return rows.map((row) => ({ kind: row.kind, collection: row.collection, count: Number(row.count) }));
  }

  async compactHistory(tenant: string, collection: string, policy: RetentionPolicy): Promise<number> {
    const result = await this.pool
      .query(
        `DELETE FROM events e USING records r
         WHERE e.tenant = $1 AND e.kind = 'record' AND e.collection = $2
           AND r.tenant = e.tenant AND r.collection = e.collection AND r.id = e.record_id
           AND e.version < r.version
           AND (e.version <= r.version - $3 OR e.ts < $4)`,
        [tenant, collection, policy.keepVersions ?? Number.MAX_SAFE_INTEGER, policy.before ?? ''],
      )
      .catch((err: unknown) => {
        throw translateError(err);
      });
    return result.rowCount ?? 0;
  }

  async pruneResults(before: string): Promise<number> {
    const result = await this.pool
      .query('DELETE FROM mutation_results WHERE created_at < $1::timestamptz', [before])
      .catch((err: unknown) => {
        throw translateError(err);
      });
    return result.rowCount ?? 0;
  }

  async listTenants(): Promise<string[]> {
    const rows = await query<{ tenant: string }>(
      this.pool,
      'SELECT tenant FROM tenant_heads ORDER BY tenant',
    );
    return rows.map((r) => r.tenant);
  }

  async listRecordCollections(tenant: string): Promise<string[]> {
    const rows = await query<{ collection: string }>(
      this.pool,
      'SELECT DISTINCT collection FROM records WHERE tenant = $1 ORDER BY collection',
      [tenant],
    );
    return rows.map((r) => r.collection);
  }

  async countOpenConflicts(): Promise<{ tenant: string; count: number }[]> {
    const rows = await query<{ tenant: string; count: string }>(
      this.pool,
      "SELECT tenant, COUNT(*) AS count FROM conflicts WHERE status = 'open' GROUP BY tenant",
    );
    return rows.map((r) => ({ tenant: r.tenant, count: Number(r.count) }));
  }

  async ping(): Promise<void> {
    await query(this.pool, 'SELECT 1');
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await this.pool.end();
  }
}
