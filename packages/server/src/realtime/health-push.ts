/**
 * Pushes per-platform sync health to the connections that operate a tenant (tenant admins and platform
 * tokens) as `health` messages: within one period of connecting, and again whenever it changes. One
 * health read per tenant and period, whatever the number of such connections.
 */
import type { PlatformHealth, ServerMessage } from '@syncbridge/protocol';
import type { Logger } from 'pino';
import { isTenantAdmin } from '../auth/principal.ts';
import type { Connection } from './connection.ts';

export type HealthSource = (tenant: string) => Promise<PlatformHealth[]>;

export class HealthPush {
  private readonly lastSent = new WeakMap<Connection, string>();
  private running = false;

  constructor(
    private readonly source: HealthSource,
    private readonly logger: Logger,
  ) {}

  /** Whether a connection gets health messages. */
  static wants(conn: Connection): boolean {
    const p = conn.principal;
    return p !== null && conn.isOpen && (isTenantAdmin(p) || p.platform !== undefined);
  }

  /** One pass: reads each operated tenant's health once and sends it where it is new. */
  async tick(connections: Iterable<Connection>): Promise<void> {
    if (this.running) return;
    this.running = true;
    try {
      const byTenant = new Map<string, Connection[]>();
      for (const conn of connections) {
        if (!HealthPush.wants(conn)) continue;
        const list = byTenant.get(conn.principal!.tenant);
        if (list) list.push(conn);
        else byTenant.set(conn.principal!.tenant, [conn]);
      }
      for (const [tenant, conns] of byTenant) {
        let platforms: PlatformHealth[];
        try {
          platforms = await this.source(tenant);
        } catch (err) {
          this.logger.warn({ err, tenant }, 'could not read sync health');
          continue;
        }
        const message: ServerMessage = { type: 'health', platforms };
        const text = JSON.stringify(platforms);
        for (const conn of conns) {
          if (this.lastSent.get(conn) === text) continue;
          this.lastSent.set(conn, text);
          conn.send(message);
        }
      }
    } finally {
      this.running = false;
    }
  }
}
