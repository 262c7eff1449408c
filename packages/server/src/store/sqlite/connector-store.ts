/**
 * Connector tables on SQLite, in their own database file beside the log (`connectors.db`): ticks arrive
 * in large batches, and in a file of their own they never take the log's write lock (a second writer
 * connection to the log's file in this process could stall both, see sqlite-store.ts). The file has its
 * own numbered migrations, like the log's.
 */
import { mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import Database from 'better-sqlite3';
import type {
  ConnectorStore,
  StoredConnector,
  StoredSecret,
  TickQuery,
  TickRow,
} from '../../connectors/store.ts';
import type { ConnectorSpec, Tick } from '../../connectors/types.ts';
import { withSqliteErrors } from './errors.ts';
import type { Migration } from './migrations.ts';

export const CONNECTOR_MIGRATIONS: Migration[] = [
  {
    version: 1,
    name: 'ticks, connector state, connectors defined over REST',
    sql: `
      CREATE TABLE ticks (
        tenant TEXT NOT NULL,
        topic TEXT NOT NULL,
        seq INTEGER NOT NULL,
        symbol TEXT NOT NULL,
        ts INTEGER NOT NULL,
        price REAL,
        volume REAL,
        data TEXT,
        PRIMARY KEY (tenant, topic, seq)
      ) WITHOUT ROWID;
      CREATE INDEX ticks_by_symbol ON ticks (tenant, topic, symbol, ts, seq);
      CREATE TABLE connector_state (
        tenant TEXT NOT NULL,
        connector TEXT NOT NULL,
        key TEXT NOT NULL,
        value TEXT NOT NULL,
        updated_at TEXT NOT NULL,
        PRIMARY KEY (tenant, connector, key)
      ) WITHOUT ROWID;
      CREATE TABLE connector_configs (
        tenant TEXT NOT NULL,
        name TEXT NOT NULL,
        spec TEXT NOT NULL,
        created_at TEXT NOT NULL,
        updated_at TEXT NOT NULL,
        PRIMARY KEY (tenant, name)
      ) WITHOUT ROWID;
    `,
  },
  {
    // 12 on PostgreSQL (the connector tables are part of the main schema there).
    version: 2,
    name: "tenants' connector secrets, sealed",
    sql: `
      CREATE TABLE connector_secrets (
        tenant TEXT NOT NULL,
        name TEXT NOT NULL,
        sealed TEXT NOT NULL,
        created_at TEXT NOT NULL,
        updated_at TEXT NOT NULL,
        PRIMARY KEY (tenant, name)
      ) WITHOUT ROWID;
    `,
  },
];

const INSERT_CHUNK = 100;

interface TickDbRow {
  symbol: string;
  seq: number;
  ts: number;
  price: number | null;
  volume: number | null;
  data: string | null;
}

function tickFromRow(row: TickDbRow): Tick {
  const tick: Tick = { symbol: row.symbol, seq: row.seq, ts: row.ts };
  if (row.price !== null) tick.price = row.price;
  if (row.volume !== null) tick.volume = row.volume;
  if (row.data !== null) tick.data = JSON.parse(row.data) as Record<string, unknown>;
  return tick;
}

export class SqliteConnectorStore implements ConnectorStore {
  readonly kind = 'sqlite' as const;
  private readonly db: Database.Database;
  private readonly insertTick;
  private readonly insertMany;

  constructor(options: { file: string; synchronous?: 'FULL' | 'NORMAL' }) {
    if (options.file !== ':memory:') mkdirSync(dirname(options.file), { recursive: true });
    this.db = new Database(options.file);
    this.db.pragma('journal_mode = WAL');
    this.db.pragma(`synchronous = ${options.synchronous ?? 'FULL'}`);
    this.db.pragma('busy_timeout = 10000');
    this.migrate();
    const insert = (n: number) =>
      this.db.prepare(
        `INSERT INTO ticks (tenant, topic, seq, symbol, ts, price, volume, data) VALUES ${new Array(n)
          .fill('(?, ?, ?, ?, ?, ?, ?, ?)')
          .join(', ')} ON CONFLICT DO NOTHING`,
      );
    this.insertTick = insert(1);
    // Rows go in statements of INSERT_CHUNK rows: one statement per row costs several times more.
    const chunk = insert(INSERT_CHUNK);
    const values = (r: TickRow): unknown[] => [
      r.tenant,
      r.topic,
      r.seq,
      r.symbol,
      r.ts,
      r.price ?? null,
      r.volume ?? null,
      r.data === undefined ? null : JSON.stringify(r.data),
    ];
    this.insertMany = this.db.transaction((rows: TickRow[]) => {
      let i = 0;
      for (; i + INSERT_CHUNK <= rows.length; i += INSERT_CHUNK) {
        chunk.run(rows.slice(i, i + INSERT_CHUNK).flatMap(values));
      }
      for (; i < rows.length; i++) this.insertTick.run(values(rows[i]!));
    });
    // biome-ignore lint/correctness/noConstructorReturn: the instance, seen through its error translator
    return withSqliteErrors(this);
  }

  private migrate(): void {
    const db = this.db;
    db.exec(
      'CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at TEXT NOT NULL)',
    );
    for (const m of CONNECTOR_MIGRATIONS) {
      db.transaction(() => {
        if (db.prepare('SELECT 1 FROM schema_migrations WHERE version = ?').get(m.version)) return;
        db.exec(m.sql);
        db.prepare('INSERT INTO schema_migrations (version, name, applied_at) VALUES (?, ?, ?)').run(
          m.version,
          m.name,
          new Date().toISOString(),
        );
      }).immediate();
    }
  }

  async insertTicks(rows: TickRow[]): Promise<void> {
    if (rows.length > 0) this.insertMany.immediate(rows);
  }

  async ticks(tenant: string, topic: string, symbol: string, query: TickQuery): Promise<Tick[]> {
    const params: unknown[] = [tenant, topic, symbol];
    let where = 'tenant = ? AND topic = ? AND symbol = ?';
    if (query.from !== undefined) {
      where += ' AND ts >= ?';
      params.push(query.from);
    }
    if (query.to !== undefined) {
      where += ' AND ts < ?';
      params.push(query.to);
    }
    params.push(query.limit);
    const dir = query.order === 'desc' ? 'DESC' : 'ASC';
    const rows = this.db
      .prepare<unknown[], TickDbRow>(
        `SELECT symbol, seq, ts, price, volume, data FROM ticks WHERE ${where}
         ORDER BY ts ${dir}, seq ${dir} LIMIT ?`,
      )
      .all(...params);
    return rows.map(tickFromRow);
  }

  async lastTickSeq(tenant: string, topic: string): Promise<number> {
    const row = this.db
      .prepare<[string, string], { seq: number | null }>(
        'SELECT max(seq) AS seq FROM ticks WHERE tenant = ? AND topic = ?',
      )
      .get(tenant, topic);
    return row?.seq ?? 0;
  }

  async pruneTicks(before: number, chunk: number): Promise<number> {
    // One index seek per topic (a loose index scan over the primary key), not a scan of every tick.
    const nextTopic = this.db.prepare<[string, string], { tenant: string; topic: string }>(
      'SELECT tenant, topic FROM ticks WHERE (tenant, topic) > (?, ?) ORDER BY tenant, topic LIMIT 1',
    );
    const deleteOldest = this.db.prepare<[string, string, string, string, number, number]>(
      `DELETE FROM ticks WHERE tenant = ? AND topic = ? AND seq IN (
         SELECT seq FROM ticks WHERE tenant = ? AND topic = ? ORDER BY seq LIMIT ?) AND ts < ?`,
    );
    let deleted = 0;
    let at = { tenant: '', topic: '' };
    for (let next = nextTopic.get(at.tenant, at.topic); next; next = nextTopic.get(at.tenant, at.topic)) {
      at = next;
      for (;;) {
        const { changes } = this.db
          .transaction(() => deleteOldest.run(at.tenant, at.topic, at.tenant, at.topic, chunk, before))
          .immediate();
        deleted += changes;
        if (changes < chunk) break;
        // Let tick batches and readers in between chunks.
        await new Promise((resolve) => setImmediate(resolve));
      }
    }
    return deleted;
  }

  async getState(tenant: string, connector: string, key: string): Promise<unknown | null> {
    const row = this.db
      .prepare<[string, string, string], { value: string }>(
        'SELECT value FROM connector_state WHERE tenant = ? AND connector = ? AND key = ?',
      )
      .get(tenant, connector, key);
    return row ? (JSON.parse(row.value) as unknown) : null;
  }

  async putState(tenant: string, connector: string, key: string, value: unknown): Promise<void> {
    this.db
      .prepare(
        `INSERT INTO connector_state (tenant, connector, key, value, updated_at) VALUES (?, ?, ?, ?, ?)
         ON CONFLICT (tenant, connector, key) DO UPDATE SET value = excluded.value, updated_at = excluded.updated_at`,
      )
      .run(tenant, connector, key, JSON.stringify(value), new Date().toISOString());
  }

  async deleteState(tenant: string, connector: string): Promise<void> {
    this.db.prepare('DELETE FROM connector_state WHERE tenant = ? AND connector = ?').run(tenant, connector);
  }

  async listConnectors(): Promise<StoredConnector[]> {
    const rows = this.db
      .prepare<[], { tenant: string; name: string; spec: string; created_at: string; updated_at: string }>(
        'SELECT tenant, name, spec, created_at, updated_at FROM connector_configs ORDER BY tenant, name',
      )
      .all();
    return rows.map((r) => ({
      tenant: r.tenant,
      name: r.name,
      spec: JSON.parse(r.spec) as ConnectorSpec,
      createdAt: r.created_at,
      updatedAt: r.updated_at,
    }));
  }

  async putConnector(tenant: string, name: string, spec: ConnectorSpec): Promise<void> {
    const now = new Date().toISOString();
    this.db
      .prepare(
        `INSERT INTO connector_configs (tenant, name, spec, created_at, updated_at) VALUES (?, ?, ?, ?, ?)
         ON CONFLICT (tenant, name) DO UPDATE SET spec = excluded.spec, updated_at = excluded.updated_at`,
      )
      .run(tenant, name, JSON.stringify(spec), now, now);
  }

  async deleteConnector(tenant: string, name: string): Promise<boolean> {
    return (
      this.db.prepare('DELETE FROM connector_configs WHERE tenant = ? AND name = ?').run(tenant, name)
        .changes > 0
    );
  }

  async putSecret(tenant: string, name: string, sealed: string): Promise<void> {
    const now = new Date().toISOString();
    this.db
      .prepare(
        `INSERT INTO connector_secrets (tenant, name, sealed, created_at, updated_at) VALUES (?, ?, ?, ?, ?)
         ON CONFLICT (tenant, name) DO UPDATE SET sealed = excluded.sealed, updated_at = excluded.updated_at`,
      )
      .run(tenant, name, sealed, now, now);
  }

  async listSecrets(tenant: string, names?: readonly string[]): Promise<StoredSecret[]> {
    const rows = this.db
      .prepare<[string], { name: string; sealed: string; created_at: string; updated_at: string }>(
        'SELECT name, sealed, created_at, updated_at FROM connector_secrets WHERE tenant = ? ORDER BY name',
      )
      .all(tenant);
    const wanted = names ? new Set(names) : null;
    return rows
      .filter((r) => !wanted || wanted.has(r.name))
      .map((r) => ({ name: r.name, sealed: r.sealed, createdAt: r.created_at, updatedAt: r.updated_at }));
  }

  async deleteSecret(tenant: string, name: string): Promise<boolean> {
    return (
      this.db.prepare('DELETE FROM connector_secrets WHERE tenant = ? AND name = ?').run(tenant, name)
        .changes > 0
    );
  }

  async close(): Promise<void> {
    if (this.db.open) this.db.close();
  }
}
