/**
 * Connector leases on PostgreSQL (see connectors/leases.ts): `pg_try_advisory_lock` on one dedicated
 * connection per node. The lock key is a 32-bit hash of the schema, tenant and connector name under a
 * class id of its own, so nodes of other schemas on the same database never compete for it (and the
 * migration lock, a single bigint key, never collides with it). When the connection drops, PostgreSQL
 * frees every lock it held: this node stops its connectors and competes again once it reconnects.
 */
import { createHash } from 'node:crypto';
import pg from 'pg';
import type { ConnectorLeases } from '../../connectors/leases.ts';

/** The advisory lock class of connector leases ("SBcn"). */
const LEASE_CLASS = 0x5342636e;

export class PostgresConnectorLeases implements ConnectorLeases {
  private client: pg.Client | null = null;
  private connecting: Promise<pg.Client> | null = null;
  private readonly held = new Set<string>();
  private readonly lostListeners: Array<() => void> = [];
  private closed = false;

  constructor(
    private readonly connectionString: string,
    private readonly schema = 'public',
  ) {}

  private key(tenant: string, name: string): [number, number] {
    const digest = createHash('sha256').update(`${this.schema}\u0000${tenant}\u0000${name}`).digest();
    return [LEASE_CLASS, digest.readInt32BE(0)];
  }

  private connection(): Promise<pg.Client> {
    if (this.client) return Promise.resolve(this.client);
    this.connecting ??= (async () => {
      const client = new pg.Client({
        connectionString: this.connectionString,
        connectionTimeoutMillis: 10_000,
        keepAlive: true,
        application_name: 'syncbridge-connector-leases',
      });
      const dropped = () => this.dropped(client);
      client.on('error', dropped);
      client.on('end', dropped);
      try {
        await client.connect();
      } catch (err) {
        client.removeAllListeners();
        throw err;
      }
      this.client = client;
      return client;
    })().finally(() => {
      this.connecting = null;
    });
    return this.connecting;
  }

  /** The connection ended: PostgreSQL freed its locks, so none is held any more. */
  private dropped(client: pg.Client): void {
    if (this.client !== client) return;
    this.client = null;
    client.removeAllListeners();
    client.on('error', () => {});
    void client.end().catch(() => {});
    const hadLeases = this.held.size > 0;
    this.held.clear();
    if (hadLeases && !this.closed) for (const listener of this.lostListeners) listener();
  }

  async tryAcquire(tenant: string, name: string): Promise<boolean> {
    if (this.closed) return false;
    const id = `${tenant}\u0000${name}`;
    if (this.held.has(id)) return true;
    const client = await this.connection();
    const { rows } = await client.query<{ ok: boolean }>('SELECT pg_try_advisory_lock($1, $2) AS ok', [
      ...this.key(tenant, name),
    ]);
    if (rows[0]?.ok !== true) return false;
    if (this.client !== client) {
      // The connection dropped while the answer came: that lock is gone with it.
      return false;
    }
    this.held.add(id);
    return true;
  }

  async release(tenant: string, name: string): Promise<void> {
    const id = `${tenant}\u0000${name}`;
    if (!this.held.delete(id) || !this.client) return;
    await this.client.query('SELECT pg_advisory_unlock($1, $2)', [...this.key(tenant, name)]);
  }

  async check(): Promise<void> {
    if (this.held.size === 0 || !this.client) return;
    const client = this.client;
    try {
      await client.query('SELECT 1');
    } catch {
      this.dropped(client);
    }
  }

  onLost(listener: () => void): void {
    this.lostListeners.push(listener);
  }

  async close(): Promise<void> {
    this.closed = true;
    this.held.clear();
    const client = this.client ?? (await this.connecting?.catch(() => null)) ?? null;
    this.client = null;
    if (!client) return;
    client.removeAllListeners();
    client.on('error', () => {});
    // Ending the session frees every lock it held.
    await client.end().catch(() => {});
  }
}
