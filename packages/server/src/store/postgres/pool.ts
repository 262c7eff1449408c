/**
 * The PostgreSQL store's pool helpers: one query with its driver errors translated (sql.ts), jsonb read
 * as its JSON text, identifier quoting. It must never open a pool or hold domain logic.
 */
import pg from 'pg';
import { translateError } from './sql.ts';

export type Queryable = pg.Pool | pg.PoolClient;

const JSONB_OID = 3802;

/**
 * jsonb arrives as its JSON text, like SQLite's TEXT columns, for rows.ts's parseJson: node-postgres
 * would parse it, and parseJson would then take a JSON string value ("abc") for JSON text to parse again.
 * Scoped to this store's pool; the process-wide pg.types are left alone.
 */
export const typeParser = ((oid: number, format?: string) =>
  oid === JSONB_OID
    ? (value: string) => value
    : pg.types.getTypeParser(oid, format as 'text')) as typeof pg.types.getTypeParser;

export async function query<R extends pg.QueryResultRow>(
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

export function quoteIdent(name: string): string {
  return `"${name}"`;
}
