/**
 * Who runs a connector when several nodes know it: the node holding its lease. A connector pulls from
 * or holds a connection to an outside system, so two nodes running it would pull twice and open two
 * feed connections; with leases exactly one node runs each connector and the others stand by, trying
 * to take the lease over every few seconds.
 *
 * On PostgreSQL the lease is a session advisory lock on a dedicated connection: the database frees it
 * the moment the holding node's connection ends (a crash, a kill -9, a network cut the server notices),
 * so a dead node's connectors move to another node without a lease row to expire or clean up. One
 * node on SQLite holds every lease trivially.
 */

export interface ConnectorLeases {
  /** Takes the lease of a tenant's connector if it is free; true when this node holds it. */
  tryAcquire(tenant: string, name: string): Promise<boolean>;
  /** Gives a held lease up (the connector stopped here), so another node may take it at once. */
  release(tenant: string, name: string): Promise<void>;
  /**
   * Checks that the held leases are still held (the connection to the database is alive); when they
   * are not, the `onLost` listeners hear it.
   */
  check(): Promise<void>;
  /** Called when every lease this node held was lost at once (its database connection dropped). */
  onLost(listener: () => void): void;
  close(): Promise<void>;
}

/** One node, no one to share with: every lease is this node's (SQLite, or a code-only setup). */
export class LocalConnectorLeases implements ConnectorLeases {
  async tryAcquire(): Promise<boolean> {
    return true;
  }
  async release(): Promise<void> {}
  async check(): Promise<void> {}
  onLost(): void {}
  async close(): Promise<void> {}
}
