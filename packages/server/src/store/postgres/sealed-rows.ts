/**
 * PostgreSQL side of key rotation (SealedRows, see store/key-rotation.ts): a small pool of its own for
 * pages and compare-and-set rewrites, and a session advisory lock on a dedicated connection so that of
 * the nodes sharing the database one at a time runs the rotation (the database frees the lock when that
 * node's connection ends, and another node takes over at its next try).
 */
import pg from 'pg';
import type { SealedKind, SealedRow, SealedRows } from '../key-rotation.ts';
import { keyOf, pageQuery, rewriteQuery } from '../key-rotation-sql.ts';
import { quoteIdent, typeParser } from './pool.ts';

/** The advisory lock of the key rotation ("SBkr"). */
const LOCK = [0x53426b72, 1] as const;

export class PostgresSealedRows implements SealedRows {
  private readonly pool: pg.Pool;
  private leader: pg.PoolClient | null = null;
  private closed = false;

  constructor(options: { connectionString: string; schema?: string }) {
    if (options.schema !== undefined && !/^[A-Za-z_][A-Za-z0-9_]{0,62}$/.test(options.schema)) {
      throw new Error(`invalid PostgreSQL schema name: ${options.schema}`);
    }
    this.pool = new pg.Pool({
      connectionString: options.connectionString,
      max: 2,
      connectionTimeoutMillis: 10_000,
      types: { getTypeParser: typeParser },
      ...(options.schema ? { options: `-c search_path=${quoteIdent(options.schema)}` } : {}),
    });
    this.pool.on('error', () => {});
  }

  async page(kind: SealedKind, after: string | null, limit: number): Promise<SealedRow[]> {
    const q = pageQuery('postgres', kind, after, limit);
    const { rows } = await this.pool.query<Record<string, unknown>>(q.sql, q.params);
    return rows.map((r) => ({
      key: keyOf(r, q.keys),
      tenant: String(r.tenant),
      collection: typeof r.x_collection === 'string' ? r.x_collection : null,
      text: String(r.x_text),
    }));
  }

  async rewrite(kind: SealedKind, row: SealedRow, to: string): Promise<boolean> {
    const q = rewriteQuery('postgres', kind, row.key, row.text, to);
    return ((await this.pool.query(q.sql, q.params)).rowCount ?? 0) > 0;
  }

  async tryLead(): Promise<boolean> {
    if (this.leader) {
      try {
        await this.leader.query('SELECT 1');
        return true;
      } catch {
        this.leader.release(true);
        this.leader = null;
      }
    }
    const client = await this.pool.connect();
    try {
      const { rows } = await client.query<{ ok: boolean }>('SELECT pg_try_advisory_lock($1, $2) AS ok', [
        ...LOCK,
      ]);
      if (rows[0]?.ok === true) {
        client.on('error', () => {});
        this.leader = client;
        return true;
      }
    } catch {
      // Not leading this time; the next try asks again.
    }
    client.release();
    return false;
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    if (this.leader) {
      await this.leader.query('SELECT pg_advisory_unlock($1, $2)', [...LOCK]).catch(() => undefined);
      this.leader.release();
      this.leader = null;
    }
    await this.pool.end();
  }
}
