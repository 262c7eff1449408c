/**
 * SQLite side of devices, their cursors and API keys (DeviceStore, ApiKeyStore), over the store's two
 * connections: reads on the reader, writes through the store's writer queue. It must never hold domain
 * logic (eviction and pending counts are devices/registry.ts's).
 */
import type { Device } from '@syncbridge/protocol';
import type Database from 'better-sqlite3';
import type { ApiKeyRow, EventCount } from '../types.ts';

/** The store's connections, and its writer queue (a write runs alone on the writer). */
export interface SqliteParts {
  writer: Database.Database;
  reader: Database.Database;
  exclusive: <T>(fn: () => T) => Promise<T>;
}

const STMTS = (w: Database.Database, r: Database.Database) => ({
  findKey: r.prepare<[string], ApiKeyRow>('SELECT id, tenant, label FROM api_keys WHERE hash = ?'),
  createKey: w.prepare('INSERT INTO api_keys (id, tenant, hash, label, created_at) VALUES (?, ?, ?, ?, ?)'),
  saveCursor: w.prepare(
    `INSERT INTO cursors (tenant, user_id, device_id, seq, updated_at) VALUES (?, ?, ?, ?, ?)
     ON CONFLICT (tenant, user_id, device_id) DO UPDATE SET seq = max(seq, excluded.seq), updated_at = excluded.updated_at`,
  ),
  getCursor: r.prepare<[string, string, string], { seq: number }>(
    'SELECT seq FROM cursors WHERE tenant = ? AND user_id = ? AND device_id = ?',
  ),
});

export class SqliteAccounts {
  private readonly stmts;

  constructor(private readonly parts: SqliteParts) {
    const { writer: w, reader: r } = parts;
    this.stmts = STMTS(w, r);
  }

  async findApiKey(hash: string): Promise<ApiKeyRow | null> {
    return this.stmts.findKey.get(hash) ?? null;
  }

  async createApiKey(row: ApiKeyRow & { hash: string }): Promise<void> {
    await this.parts.exclusive(() =>
      this.stmts.createKey.run(row.id, row.tenant, row.hash, row.label, new Date().toISOString()),
    );
  }

  async replaceApiKey(row: ApiKeyRow & { hash: string }): Promise<void> {
    await this.parts.exclusive(() =>
      this.parts.writer
        .prepare(
          `INSERT INTO api_keys (id, tenant, hash, label, created_at) VALUES (?, ?, ?, ?, ?)
           ON CONFLICT (id) DO UPDATE SET hash = excluded.hash, label = excluded.label,
             created_at = excluded.created_at`,
        )
        .run(row.id, row.tenant, row.hash, row.label, new Date().toISOString()),
    );
  }

  async deleteApiKey(id: string): Promise<boolean> {
    return this.parts.exclusive(
      () => this.parts.writer.prepare('DELETE FROM api_keys WHERE id = ?').run(id).changes > 0,
    );
  }

  async saveCursor(tenant: string, user: string, device: string, seq: number): Promise<void> {
    await this.parts.exclusive(() =>
      this.stmts.saveCursor.run(tenant, user, device, seq, new Date().toISOString()),
    );
  }

  async getCursor(tenant: string, user: string, device: string): Promise<number | null> {
    return this.stmts.getCursor.get(tenant, user, device)?.seq ?? null;
  }

  async putDevice(tenant: string, device: Device): Promise<void> {
    await this.parts.exclusive(() =>
      this.parts.writer
        .prepare(
          `INSERT INTO devices (tenant, user_id, id, doc) VALUES (?, ?, ?, ?)
           ON CONFLICT (tenant, user_id, id) DO UPDATE SET doc = excluded.doc`,
        )
        .run(tenant, device.user, device.id, JSON.stringify(device)),
    );
  }

  async getDevice(tenant: string, user: string, id: string): Promise<Device | null> {
    const row = this.parts.reader
      .prepare<[string, string, string], { doc: string }>(
        'SELECT doc FROM devices WHERE tenant = ? AND user_id = ? AND id = ?',
      )
      .get(tenant, user, id);
    return row ? (JSON.parse(row.doc) as Device) : null;
  }

  async listDevices(tenant: string, user?: string): Promise<Device[]> {
    const rows =
      user === undefined
        ? this.parts.reader
            .prepare<[string], { doc: string }>(
              'SELECT doc FROM devices WHERE tenant = ? ORDER BY user_id, id',
            )
            .all(tenant)
        : this.parts.reader
            .prepare<[string, string], { doc: string }>(
              'SELECT doc FROM devices WHERE tenant = ? AND user_id = ? ORDER BY id',
            )
            .all(tenant, user);
    return rows.map((row) => JSON.parse(row.doc) as Device);
  }

  async deleteDevice(tenant: string, user: string, id: string): Promise<boolean> {
    return this.parts.exclusive(() =>
      this.parts.writer.transaction(() => {
        this.parts.writer
          .prepare('DELETE FROM cursors WHERE tenant = ? AND user_id = ? AND device_id = ?')
          .run(tenant, user, id);
        return (
          this.parts.writer
            .prepare('DELETE FROM devices WHERE tenant = ? AND user_id = ? AND id = ?')
            .run(tenant, user, id).changes > 0
        );
      })(),
    );
  }

  async countEventsAfter(tenant: string, afterSeq: number, limit: number): Promise<EventCount[]> {
    return this.parts.reader
      .prepare<[string, number, number], EventCount>(
        `SELECT kind, collection, count(*) AS count
         FROM (SELECT kind, collection FROM events WHERE tenant = ? AND seq > ? ORDER BY seq LIMIT ?)
         GROUP BY kind, collection`,
      )
      .all(tenant, afterSeq, limit)
      .map((row) => ({ kind: row.kind, collection: row.collection ?? null, count: Number(row.count) }));
  }
}
