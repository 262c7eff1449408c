/**
 * A platform's own PostgreSQL database for the pg-cdc suites and bench: a fresh database on the local
 * server (`cdc_src_<random>`) with a `trades` table, an `outbox` table and a publication of both, and
 * the cleanup that drops its replication slots, then the database. Names are unique per run, so
 * parallel runs never share a slot or a publication.
 */
import { randomBytes } from 'node:crypto';
import pg from 'pg';
import { POSTGRES_URL } from '../helpers/server.ts';

export interface SourceDb {
  name: string;
  url: string;
  publication: string;
  /** A connection to the source database (close it with `drop`). */
  client: pg.Client;
  /** Runs statements in one transaction. */
  tx(statements: Array<[string, unknown[]?]>): Promise<void>;
  /** The slots of this database (name, active pid). */
  slots(): Promise<Array<{ slot_name: string; active_pid: number | null }>>;
  /** Ends the walsender sessions streaming this database's slots (a source restart, as the connector sees it). */
  terminateWalSenders(): Promise<number>;
  drop(): Promise<void>;
}

function withDatabase(url: string, database: string): string {
  const parsed = new URL(url);
  parsed.pathname = `/${database}`;
  return parsed.toString();
}

export async function createSourceDb(): Promise<SourceDb> {
  const id = randomBytes(5).toString('hex');
  const name = `cdc_src_${id}`;
  const publication = `cdc_pub_${id}`;
  const admin = new pg.Client({ connectionString: POSTGRES_URL });
  await admin.connect();
  try {
    await admin.query(`CREATE DATABASE ${name}`);
  } finally {
    await admin.end();
  }
  const url = withDatabase(POSTGRES_URL, name);
  const client = new pg.Client({ connectionString: url });
  client.on('error', () => {});
  await client.connect();
  await client.query(`
    CREATE TABLE trades (id integer PRIMARY KEY, symbol text NOT NULL, qty integer NOT NULL,
                         booked_at timestamptz NOT NULL DEFAULT now(), internal_note text);
    CREATE TABLE outbox (id bigserial PRIMARY KEY, event_type text NOT NULL, payload jsonb,
                         source text, target text, priority integer);
    CREATE TABLE unmapped (id integer PRIMARY KEY);
    CREATE PUBLICATION ${publication} FOR TABLE trades, outbox;`);
  const slotsOf = async () =>
    (
      await client.query(
        'SELECT slot_name, active_pid FROM pg_replication_slots WHERE database = $1 ORDER BY slot_name',
        [name],
      )
    ).rows as Array<{ slot_name: string; active_pid: number | null }>;
  return {
    name,
    url,
    publication,
    client,
    async tx(statements) {
      await client.query('BEGIN');
      try {
        for (const [sql, params] of statements) await client.query(sql, params);
        await client.query('COMMIT');
      } catch (err) {
        await client.query('ROLLBACK');
        throw err;
      }
    },
    slots: slotsOf,
    async terminateWalSenders() {
      const result = await client.query(
        `SELECT pg_terminate_backend(active_pid) FROM pg_replication_slots
          WHERE database = $1 AND active_pid IS NOT NULL`,
        [name],
      );
      return result.rowCount ?? 0;
    },
    async drop() {
      await client.end().catch(() => {});
      const cleaner = new pg.Client({ connectionString: POSTGRES_URL });
      await cleaner.connect();
      try {
        for (let attempt = 0; attempt < 50; attempt++) {
          await cleaner.query(
            `SELECT pg_terminate_backend(active_pid) FROM pg_replication_slots
              WHERE database = $1 AND active_pid IS NOT NULL`,
            [name],
          );
          try {
            await cleaner.query(
              'SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots WHERE database = $1',
              [name],
            );
            break;
          } catch {
            await new Promise((r) => setTimeout(r, 100));
          }
        }
        await cleaner.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
      } finally {
        await cleaner.end();
      }
    },
  };
}
