/**
 * What connectors keep: persisted ticks (history queries), small durable state per connector (cursors,
 * last success times, feed subscriptions), the definitions of connectors created over REST and the
 * tenants' connector secrets. A secret reaches the store sealed (connectors/secrets.ts): the store never
 * sees, nor may it be given, a secret's plain value.
 *
 * On SQLite these live in their own file beside the log (`connectors.db`): tick batches then never wait
 * for, nor hold up, the log's write lock. On PostgreSQL they are tables of the same schema (migration 8)
 * reached through a small pool of their own.
 */
import type { ConnectorSpec, Tick } from './types.ts';

export interface TickRow extends Tick {
  tenant: string;
  topic: string;
}

export interface TickQuery {
  /** Milliseconds since the epoch, inclusive. */
  from?: number;
  /** Milliseconds since the epoch, exclusive. */
  to?: number;
  limit: number;
  /** `desc`: the newest first (the default for "the last N ticks"). */
  order: 'asc' | 'desc';
}

export interface StoredConnector {
  tenant: string;
  name: string;
  spec: ConnectorSpec;
  createdAt: string;
  updatedAt: string;
}

/** A tenant's connector secret as stored: its name and its value sealed with the server's secrets key. */
export interface StoredSecret {
  name: string;
  sealed: string;
  createdAt: string;
  updatedAt: string;
}

export interface ConnectorStore {
  readonly kind: 'sqlite' | 'postgres';
  /** Writes a batch of ticks in one transaction; a tick already stored (same topic and seq) is kept. */
  insertTicks(rows: TickRow[]): Promise<void>;
  ticks(tenant: string, topic: string, symbol: string, query: TickQuery): Promise<Tick[]>;
  /** The highest seq stored for a topic (0 when none): its sequence resumes after it. */
  lastTickSeq(tenant: string, topic: string): Promise<number>;
  /**
   * Deletes stored ticks older than `before` (ms since the epoch), oldest first, in transactions of at
   * most `chunk` rows so tick writes never wait long; returns how many went. Walks each topic from its
   * lowest seq and stops at the first tick that is not old enough (ticks are stored in time order; one
   * that arrived out of order waits for a later pass).
   */
  pruneTicks(before: number, chunk: number): Promise<number>;
  getState(tenant: string, connector: string, key: string): Promise<unknown | null>;
  putState(tenant: string, connector: string, key: string, value: unknown): Promise<void>;
  deleteState(tenant: string, connector: string): Promise<void>;
  listConnectors(): Promise<StoredConnector[]>;
  putConnector(tenant: string, name: string, spec: ConnectorSpec): Promise<void>;
  deleteConnector(tenant: string, name: string): Promise<boolean>;
  /** Creates or replaces a tenant's secret (already sealed); keeps its creation time on a replace. */
  putSecret(tenant: string, name: string, sealed: string): Promise<void>;
  /** The tenant's secrets by name (only those named, when `names` is given). */
  listSecrets(tenant: string, names?: readonly string[]): Promise<StoredSecret[]>;
  deleteSecret(tenant: string, name: string): Promise<boolean>;
  close(): Promise<void>;
}
