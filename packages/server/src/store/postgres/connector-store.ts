/**
 * Connector tables on PostgreSQL (migrations 8 and 12): ticks, connector state, connectors defined over
 * REST and the tenants' sealed connector secrets.
 * A small pool of its own on the same database and schema, so tick batches never queue behind the log's
 * transactions for a pooled connection.
 */
import pg from 'pg';
import type {
  ConnectorStore,
  StoredConnector,
  StoredSecret,
  TickQuery,
  TickRow,
} from '../../connectors/store.ts';
import type { ConnectorSpec, Tick } from '../../connectors/types.ts';

const INT8_OID = 20;
const JSONB_OID = 3802;

export interface PostgresConnectorStoreOptions {
  connectionString: string;
  schema?: string;
  poolSize?: number;
}

interface TickDbRow {
  symbol: string;
  seq: number;
  ts: number;
  price: number | null;
  volume: number | null;
  data: Record<string, unknown> | null;
}

export function tickFromRow(row: TickDbRow): Tick {
  const tick: Tick = { symbol: row.symbol, seq: Number(row.seq), ts: Number(row.ts) };
  if (row.price !== null) tick.price = row.price;
  if (row.volume !== null) tick.volume = row.volume;
  if (row.data !== null) tick.data = row.data;
  return tick;
}

export class PostgresConnectorStore implements ConnectorStore {
  readonly kind = 'postgres' as const;
  private readonly pool: pg.Pool;

  constructor(options: PostgresConnectorStoreOptions) {
    if (options.schema !== undefined && !/^[A-Za-z_][A-Za-z0-9_]{0,62}$/.test(options.schema)) {
      throw new Error(`invalid PostgreSQL schema name: ${options.schema}`);
    }
    this.pool = new pg.Pool({
      connectionString: options.connectionString,
      max: options.poolSize ?? 3,
      connectionTimeoutMillis: 10_000,
      types: {
        getTypeParser: ((oid: number, format?: string) =>
          oid === INT8_OID
            ? (value: string) => Number(value)
            : oid === JSONB_OID
              ? (value: string) => JSON.parse(value)
              : pg.types.getTypeParser(oid, format as 'text')) as typeof pg.types.getTypeParser,
      },
      ...(options.schema ? { options: `-c search_path="${options.schema}"` } : {}),
    });
    this.pool.on('error', () => {});
  }

  async insertTicks(rows: TickRow[]): Promise<void> {
    if (rows.length === 0) return;
    const cols: unknown[][] = [[], [], [], [], [], [], [], []];
    for (const r of rows) {
      cols[0]!.push(r.tenant);
      cols[1]!.push(r.topic);
      cols[2]!.push(r.seq);
      cols[3]!.push(r.symbol);
      cols[4]!.push(r.ts);
      cols[5]!.push(r.price ?? null);
      cols[6]!.push(r.volume ?? null);
      cols[7]!.push(r.data === undefined ? null : JSON.stringify(r.data));
    }
    await this.pool.query(
      `INSERT INTO ticks (tenant, topic, seq, symbol, ts, price, volume, data)
       SELECT * FROM unnest($1::text[], $2::text[], $3::bigint[], $4::text[], $5::bigint[],
                            $6::float8[], $7::float8[], $8::jsonb[])
       ON CONFLICT DO NOTHING`,
      cols,
    );
  }

  async ticks(tenant: string, topic: string, symbol: string, query: TickQuery): Promise<Tick[]> {
    const params: unknown[] = [tenant, topic, symbol];
    let where = 'tenant = $1 AND topic = $2 AND symbol = $3';
    if (query.from !== undefined) {
      params.push(query.from);
      where += ` AND ts >= $${params.length}`;
    }
    if (query.to !== undefined) {
      params.push(query.to);
      where += ` AND ts < $${params.length}`;
    }
    params.push(query.limit);
    const dir = query.order === 'desc' ? 'DESC' : 'ASC';
    const { rows } = await this.pool.query<TickDbRow>(
      `SELECT symbol, seq, ts, price, volume, data FROM ticks WHERE ${where}
       ORDER BY ts ${dir}, seq ${dir} LIMIT $${params.length}`,
      params,
    );
    return rows.map(tickFromRow);
  }

  async lastTickSeq(tenant: string, topic: string): Promise<number> {
    const { rows } = await this.pool.query<{ seq: number | null }>(
      'SELECT max(seq) AS seq FROM ticks WHERE tenant = $1 AND topic = $2',
      [tenant, topic],
    );
    return Number(rows[0]?.seq ?? 0);
  }

  async pruneTicks(before: number, chunk: number): Promise<number> {
    let deleted = 0;
    let at = { tenant: '', topic: '' };
    for (;;) {
      // One index seek per topic (a loose index scan over the primary key), not a scan of every tick.
      const { rows } = await this.pool.query<{ tenant: string; topic: string }>(
        'SELECT tenant, topic FROM ticks WHERE (tenant, topic) > ($1, $2) ORDER BY tenant, topic LIMIT 1',
        [at.tenant, at.topic],
      );
      if (!rows[0]) return deleted;
      at = rows[0];
      for (;;) {
        const { rowCount } = await this.pool.query(
          `DELETE FROM ticks WHERE tenant = $1 AND topic = $2 AND seq IN (
             SELECT seq FROM ticks WHERE tenant = $1 AND topic = $2 ORDER BY seq LIMIT $3) AND ts < $4`,
          [at.tenant, at.topic, chunk, before],
        );
        deleted += rowCount ?? 0;
        if ((rowCount ?? 0) < chunk) break;
      }
    }
  }

  async getState(tenant: string, connector: string, key: string): Promise<unknown | null> {
    const { rows } = await this.pool.query<{ value: unknown }>(
      'SELECT value FROM connector_state WHERE tenant = $1 AND connector = $2 AND key = $3',
      [tenant, connector, key],
    );
    return rows[0]?.value ?? null;
  }

  async putState(tenant: string, connector: string, key: string, value: unknown): Promise<void> {
    await this.pool.query(
      `INSERT INTO connector_state (tenant, connector, key, value) VALUES ($1, $2, $3, $4::jsonb)
       ON CONFLICT (tenant, connector, key) DO UPDATE SET value = excluded.value, updated_at = now()`,
      [tenant, connector, key, JSON.stringify(value)],
    );
  }

  async deleteState(tenant: string, connector: string): Promise<void> {
    await this.pool.query('DELETE FROM connector_state WHERE tenant = $1 AND connector = $2', [
      tenant,
      connector,
    ]);
  }

  async listConnectors(): Promise<StoredConnector[]> {
    const { rows } = await this.pool.query<{
      tenant: string;
      name: string;
      spec: ConnectorSpec;
      created_at: Date;
      updated_at: Date;
    }>('SELECT tenant, name, spec, created_at, updated_at FROM connector_configs ORDER BY tenant, name');
    return rows.map((r) => ({
      tenant: r.tenant,
      name: r.name,
      spec: r.spec,
      createdAt: r.created_at.toISOString(),
      updatedAt: r.updated_at.toISOString(),
    }));
  }

  async putConnector(tenant: string, name: string, spec: ConnectorSpec): Promise<void> {
    await this.pool.query(
      `INSERT INTO connector_configs (tenant, name, spec) VALUES ($1, $2, $3::jsonb)
       ON CONFLICT (tenant, name) DO UPDATE SET spec = excluded.spec, updated_at = now()`,
      [tenant, name, JSON.stringify(spec)],
    );
  }

  async deleteConnector(tenant: string, name: string): Promise<boolean> {
    const result = await this.pool.query('DELETE FROM connector_configs WHERE tenant = $1 AND name = $2', [
      tenant,
      name,
    ]);
    return (result.rowCount ?? 0) > 0;
  }

  async putSecret(tenant: string, name: string, sealed: string): Promise<void> {
    await this.pool.query(
      `INSERT INTO connector_secrets (tenant, name, sealed) VALUES ($1, $2, $3)
       ON CONFLICT (tenant, name) DO UPDATE SET sealed = excluded.sealed, updated_at = now()`,
      [tenant, name, sealed],
    );
  }

  async listSecrets(tenant: string, names?: readonly string[]): Promise<StoredSecret[]> {
    const { rows } = await this.pool.query<{
      name: string;
      sealed: string;
      created_at: Date;
      updated_at: Date;
    }>(
      names
        ? 'SELECT name, sealed, created_at, updated_at FROM connector_secrets WHERE tenant = $1 AND name = ANY($2::text[]) ORDER BY name'
        : 'SELECT name, sealed, created_at, updated_at FROM connector_secrets WHERE tenant = $1 ORDER BY name',
      names ? [tenant, [...names]] : [tenant],
    );
    return rows.map((r) => ({
      name: r.name,
      sealed: r.sealed,
      createdAt: r.created_at.toISOString(),
      updatedAt: r.updated_at.toISOString(),
    }));
  }

  async deleteSecret(tenant: string, name: string): Promise<boolean> {
    const result = await this.pool.query('DELETE FROM connector_secrets WHERE tenant = $1 AND name = $2', [
      tenant,
      name,
    ]);
    return (result.rowCount ?? 0) > 0;
  }

  async close(): Promise<void> {
    await this.pool.end();
  }
}
