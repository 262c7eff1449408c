/**
 * Consistent copies of SQLite database files with SQLite's online backup API, safe while a server
 * writes to them (WAL mode lets this second connection read a snapshot). The copy is made in one backup
 * step: copied page by page, any write from another connection would restart it, and under a steady load
 * it would never finish. It never writes to the source; the copy is checked before it is reported done.
 */
import Database from 'better-sqlite3';

/** Pages per backup step: more than any database has, so that the copy is one step, one snapshot. */
const ALL_PAGES = 2 ** 30;

/** Copies the database at `source` to `target` (which must not exist); returns its size in pages. */
export async function backupDatabase(source: string, target: string): Promise<number> {
  const db = new Database(source, { fileMustExist: true });
  try {
    db.pragma('busy_timeout = 10000');
    const { totalPages } = await db.backup(target, { progress: () => ALL_PAGES });
    checkDatabase(target);
    return totalPages;
  } finally {
    db.close();
  }
}

/** Throws unless the file is a SQLite database that passes `quick_check`. */
export function checkDatabase(file: string): void {
  const db = new Database(file, { readonly: true, fileMustExist: true });
  try {
    const rows = db.pragma('quick_check') as Array<{ quick_check: string }>;
    const problems = rows.map((r) => r.quick_check).filter((r) => r !== 'ok');
    if (problems.length > 0) throw new Error(`${file} is damaged: ${problems.slice(0, 3).join('; ')}`);
  } finally {
    db.close();
  }
}
