/**
 * The `pg-cdc` connector's start from nothing: creates the replication slot, and while its exported
 * snapshot is held open copies the mapped tables as of that snapshot, in pages of write groups. The
 * stream then starts at the slot's consistent point, so every change lands exactly once: before the
 * point in the copy, after it in the stream. Tables mapped later are copied the same way, as of a
 * temporary slot's snapshot (their changes before its point are then skipped in the stream). Also the
 * catalog reads the connector needs (primary keys, the publication) and the slot's removal.
 */
import pg from 'pg';

export interface CreatedSlot {
  consistentPoint: string;
  snapshotName: string | null;
  /** The replication connection that created it: the exported snapshot lives while it stays open and idle. */
  connection: pg.Client;
}

export interface SnapshotProgress {
  table: string;
  rows: number;
  total: number;
}

/** `"schema"."table"` of a validated `schema.table` (identifiers are checked by the option schema). */
export function quoted(qualifiedName: string): string {
  return qualifiedName
    .split('.')
    .map((part) => `"${part}"`)
    .join('.');
}

/**
 * Creates a logical slot (a `temporary` one goes when its connection ends: it only serves its exported
 * snapshot and consistent point).
 */
export async function createSlot(
  url: string,
  slot: string,
  exportSnapshot: boolean,
  temporary = false,
): Promise<CreatedSlot> {
  const connection = new pg.Client({ connectionString: url, replication: 'database' } as pg.ClientConfig);
  connection.on('error', () => {});
  await connection.connect();
  try {
    const mode = exportSnapshot ? 'EXPORT_SNAPSHOT' : 'NOEXPORT_SNAPSHOT';
    const kind = temporary ? 'TEMPORARY LOGICAL' : 'LOGICAL';
    const result = await connection.query(`CREATE_REPLICATION_SLOT "${slot}" ${kind} pgoutput ${mode}`);
    const row = result.rows[0] as { consistent_point: string; snapshot_name: string | null };
    return { consistentPoint: row.consistent_point, snapshotName: row.snapshot_name ?? null, connection };
  } catch (err) {
    await connection.end().catch(() => {});
    throw err;
  }
}

/** The key columns of each mapped table, in key order (empty for a table without a primary key). */
export async function primaryKeys(client: pg.Client, tables: string[]): Promise<Map<string, string[]>> {
  const keys = new Map<string, string[]>();
  for (const table of tables) {
    const exists = await client.query('SELECT to_regclass($1) AS oid', [quoted(table)]);
    if (!exists.rows[0]?.oid) throw new Error(`table ${table} does not exist in the source database`);
    const result = await client.query(
      `SELECT a.attname AS name FROM pg_index i
         JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = ANY(i.indkey)
        WHERE i.indrelid = $1::regclass AND i.indisprimary
        ORDER BY array_position(i.indkey, a.attnum)`,
      [quoted(table)],
    );
    keys.set(
      table,
      result.rows.map((r: { name: string }) => r.name),
    );
  }
  return keys;
}

/**
 * Copies the tables as of the exported snapshot, `batch` rows per page, handing each page to `page`
 * (which commits it) and reporting progress.
 */
export async function copyTables(
  url: string,
  snapshotName: string,
  tables: readonly string[],
  batch: number,
  page: (table: string, rows: Record<string, unknown>[], pageNo: number) => Promise<void>,
  progress: (p: SnapshotProgress) => void,
): Promise<void> {
  if (!/^[0-9A-Fa-f-]+$/.test(snapshotName)) throw new Error('unexpected snapshot name from the source');
  const reader = new pg.Client({ connectionString: url });
  reader.on('error', () => {});
  await reader.connect();
  try {
    await reader.query('BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY');
    await reader.query(`SET TRANSACTION SNAPSHOT '${snapshotName}'`);
    for (const table of tables) {
      const count = await reader.query(`SELECT count(*)::bigint AS n FROM ${quoted(table)}`);
      const total = Number(count.rows[0].n);
      let rows = 0;
      progress({ table, rows, total });
      await reader.query(`DECLARE syncbridge_snapshot NO SCROLL CURSOR FOR SELECT * FROM ${quoted(table)}`);
      for (let pageNo = 0; ; pageNo++) {
        const fetched = await reader.query(`FETCH ${batch} FROM syncbridge_snapshot`);
        if (fetched.rows.length === 0) break;
        await page(table, fetched.rows, pageNo);
        rows += fetched.rows.length;
        progress({ table, rows, total: Math.max(total, rows) });
      }
      await reader.query('CLOSE syncbridge_snapshot');
    }
    await reader.query('COMMIT');
  } finally {
    await reader.end().catch(() => {});
  }
}

/** Whether the slot exists in the source database. */
export async function slotExists(client: pg.Client, slot: string): Promise<boolean> {
  const result = await client.query(
    'SELECT 1 FROM pg_replication_slots WHERE slot_name = $1 AND database = current_database()',
    [slot],
  );
  return result.rows.length > 0;
}

/** Drops the slot, ending the session that holds it first; false when there was none. */
export async function dropSlot(client: pg.Client, slot: string): Promise<boolean> {
  for (let attempt = 0; ; attempt++) {
    await client.query(
      `SELECT pg_terminate_backend(active_pid) FROM pg_replication_slots
        WHERE slot_name = $1 AND active_pid IS NOT NULL AND active_pid <> pg_backend_pid()`,
      [slot],
    );
    try {
      const result = await client.query(
        'SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots WHERE slot_name = $1',
        [slot],
      );
      return (result.rowCount ?? 0) > 0;
    } catch (err) {
      // The ended session may let go of the slot a moment later.
      if (attempt >= 20 || !/is active/.test((err as Error).message)) throw err;
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
  }
}

/** Tables mapped now but not when the slot's rows were last copied (none when that is unknown). */
export function addedTables(mapped: readonly string[], copied: readonly string[] | undefined): string[] {
  return copied ? mapped.filter((t) => !copied.includes(t)) : [];
}

/** The name of the temporary slot that copies a connector's added tables (a valid slot name). */
export function addSlotName(slot: string): string {
  return `${slot.slice(0, 59)}_add`;
}
