/**
 * PostgreSQL side of devices, their cursors and API keys (DeviceStore, ApiKeyStore), on the store's
 * pool. It must never hold domain logic (eviction and pending counts are devices/registry.ts's).
 */
import type { Device } from '@syncbridge/protocol';
import type pg from 'pg';
import type { ApiKeyRow, EventCount } from '../types.ts';
import { query } from './pool.ts';

/** The store's pool and its transaction runner (ROLLBACK on error, a broken client destroyed). */
export interface PostgresParts {
  pool: pg.Pool;
  inTransaction<T>(begin: string, fn: (client: pg.PoolClient) => Promise<T>): Promise<T>;
}

export class PostgresAccounts {
  constructor(private readonly parts: PostgresParts) {}

  async findApiKey(hash: string): Promise<ApiKeyRow | null> {
    const rows = await query<ApiKeyRow>(
      this.parts.pool,
      'SELECT id, tenant, label FROM api_keys WHERE hash = $1',
      [hash],
    );
    return rows[0] ?? null;
  }

  async createApiKey(row: ApiKeyRow & { hash: string }): Promise<void> {
    await query(this.parts.pool, 'INSERT INTO api_keys (id, tenant, hash, label) VALUES ($1, $2, $3, $4)', [
      row.id,
      row.tenant,
      row.hash,
      row.label,
    ]);
  }

  async replaceApiKey(row: ApiKeyRow & { hash: string }): Promise<void> {
    await query(
      this.parts.pool,
      `INSERT INTO api_keys (id, tenant, hash, label) VALUES ($1, $2, $3, $4)
       ON CONFLICT (id) DO UPDATE SET hash = excluded.hash, label = excluded.label, created_at = now()`,
      [row.id, row.tenant, row.hash, row.label],
    );
  }

  async deleteApiKey(id: string): Promise<boolean> {
    const rows = await query(this.parts.pool, 'DELETE FROM api_keys WHERE id = $1 RETURNING id', [id]);
    return rows.length > 0;
  }

  async saveCursor(tenant: string, user: string, device: string, seq: number): Promise<void> {
    await query(
      this.parts.pool,
      `INSERT INTO cursors (tenant, user_id, device_id, seq, updated_at) VALUES ($1, $2, $3, $4, now())
       ON CONFLICT (tenant, user_id, device_id)
       DO UPDATE SET seq = GREATEST(cursors.seq, excluded.seq), updated_at = excluded.updated_at`,
      [tenant, user, device, seq],
    );
  }

  async getCursor(tenant: string, user: string, device: string): Promise<number | null> {
    const rows = await query<{ seq: string }>(
      this.parts.pool,
      'SELECT seq FROM cursors WHERE tenant = $1 AND user_id = $2 AND device_id = $3',
      [tenant, user, device],
    );
    return rows.length ? Number(rows[0].seq) : null;
  }

  async putDevice(tenant: string, device: Device): Promise<void> {
    await query(
      this.parts.pool,
      `INSERT INTO devices (tenant, user_id, id, doc) VALUES ($1, $2, $3, $4)
       ON CONFLICT (tenant, user_id, id) DO UPDATE SET doc = excluded.doc`,
      [tenant, device.user, device.id, JSON.stringify(device)],
    );
  }

  async getDevice(tenant: string, user: string, id: string): Promise<Device | null> {
    const rows = await query<{ doc: string }>(
      this.parts.pool,
      'SELECT doc FROM devices WHERE tenant = $1 AND user_id = $2 AND id = $3',
      [tenant, user, id],
    );
    return rows[0] ? (JSON.parse(rows[0].doc) as Device) : null;
  }

  async listDevices(tenant: string, user?: string): Promise<Device[]> {
    const rows =
      user === undefined
        ? await query<{ doc: string }>(
            this.parts.pool,
            'SELECT doc FROM devices WHERE tenant = $1 ORDER BY user_id, id',
            [tenant],
          )
        : await query<{ doc: string }>(
            this.parts.pool,
            'SELECT doc FROM devices WHERE tenant = $1 AND user_id = $2 ORDER BY id',
            [tenant, user],
          );
    return rows.map((row) => JSON.parse(row.doc) as Device);
  }

  async deleteDevice(tenant: string, user: string, id: string): Promise<boolean> {
    return this.parts.inTransaction('BEGIN', async (client) => {
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
      this.parts.pool,
      `SELECT kind, collection, count(*) AS count
       FROM (SELECT kind, collection FROM events WHERE tenant = $1 AND seq > $2 ORDER BY seq LIMIT $3) AS e
       GROUP BY kind, collection`,
      [tenant, afterSeq, limit],
    );
    return rows.map((row) => ({ kind: row.kind, collection: row.collection, count: Number(row.count) }));
  }
}
