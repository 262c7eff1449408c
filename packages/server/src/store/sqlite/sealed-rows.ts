/**
 * SQLite side of key rotation (SealedRows, see store/key-rotation.ts): its own connections to the
 * store's file and to the connector store's file (connector secrets), pages read and compare-and-set
 * rewrites, each one short statement under the busy timeout. One node uses a SQLite store, so this node
 * always leads the rotation.
 */
import { existsSync } from 'node:fs';
import Database from 'better-sqlite3';
import type { SealedKind, SealedRow, SealedRows } from '../key-rotation.ts';
import { inConnectorDb, keyOf, pageQuery, rewriteQuery } from '../key-rotation-sql.ts';

export class SqliteSealedRows implements SealedRows {
  private readonly store: Database.Database;
  private readonly connectors: Database.Database | null;

  constructor(files: { store: string; connectors: string }) {
    this.store = SqliteSealedRows.open(files.store);
    this.connectors = existsSync(files.connectors) ? SqliteSealedRows.open(files.connectors) : null;
  }

  private static open(file: string): Database.Database {
    const db = new Database(file, { fileMustExist: true });
    db.pragma('busy_timeout = 10000');
    // A replaced ciphertext is zeroed in the file, not left in a freed cell.
    db.pragma('secure_delete = ON');
    return db;
  }

  private db(kind: SealedKind): Database.Database | null {
    return inConnectorDb(kind) ? this.connectors : this.store;
  }

  private hasTable(db: Database.Database, kind: SealedKind): boolean {
    const table = pageQuery('sqlite', kind, null, 1).sql.match(/ FROM (\w+) /)![1]!;
    return (
      db.prepare("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?").get(table) !== undefined
    );
  }

  async page(kind: SealedKind, after: string | null, limit: number): Promise<SealedRow[]> {
    const db = this.db(kind);
    if (!db || !this.hasTable(db, kind)) return [];
    const q = pageQuery('sqlite', kind, after, limit);
    return (db.prepare(q.sql).all(...q.params) as Record<string, unknown>[]).map((r) => ({
      key: keyOf(r, q.keys),
      tenant: String(r.tenant),
      collection: typeof r.x_collection === 'string' ? r.x_collection : null,
      text: String(r.x_text),
    }));
  }

  async rewrite(kind: SealedKind, row: SealedRow, to: string): Promise<boolean> {
    const db = this.db(kind);
    if (!db) return false;
    const q = rewriteQuery('sqlite', kind, row.key, row.text, to);
    return db.prepare(q.sql).run(...q.params).changes > 0;
  }

  async tryLead(): Promise<boolean> {
    return true;
  }

  async close(): Promise<void> {
    if (this.store.open) this.store.close();
    if (this.connectors?.open) this.connectors.close();
  }
}
