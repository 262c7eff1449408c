/**
 * The Store contract: everything the server keeps durably, per tenant. Implementations (SQLite,
 * PostgreSQL) own their connections; no driver type appears here. Every method is scoped by tenant and
 * must never return another tenant's rows.
 *
 * Ordering contract: inside `transaction`, `lockTenant` takes the tenant's write lock and returns its
 * head seq; the events given to `writeBatch` continue that head without gaps. A second transaction on
 * the same tenant waits for the lock, so seqs are committed in the order they are assigned, and a reader
 * never sees seq n+1 before seq n.
 */

import type {
  CollectionSettings,
  Conflict,
  Device,
  LogEvent,
  MutationResult,
  SyncRecord,
} from '@syncbridge/protocol';
import type { BranchStore } from './branch-types.ts';
import type { HistoryStore } from './history/types.ts';
import type { SealedBackfillStore } from './sealed-backfill.ts';
import type { WebhookStore } from './webhook-types.ts';

export interface RecordKey {
  collection: string;
  id: string;
}

/** A record at one of its versions. */
export interface VersionKey extends RecordKey {
  version: number;
}

/** A delivery to write: one event for one endpoint. */
export interface NewDelivery {
  id: string;
  tenant: string;
  webhookId: string;
  eventId: string;
  seq: number;
  eventType: string;
  platform: string | null;
  priority: number | null;
  /** The exact bytes that are POSTed and signed, on every attempt. */
  body: string;
  createdAt: number;
  /**
   * Set when the node that commits it sends it at once: the delivery is written already leased to that
   * node, its first attempt counted, so no claim is needed (webhooks/dispatcher.ts `reserve`).
   */
  lease?: { node: string; until: number };
}

export interface TenantBatch {
  records: SyncRecord[];
  /** Conflicts to store or update (by id). */
  conflicts?: Conflict[];
  events: LogEvent[];
  /** Results to remember by idempotency key (a mutation's mid, or `evt:<idempotencyKey>`). */
  results: { key: string; result: MutationResult }[];
  /** The tenant's head seq after this batch (the last event's seq). */
  head: number;
  /** Webhook deliveries of these events (the outbox), written in the same transaction. */
  deliveries?: NewDelivery[];
}

/** What taking a tenant's write lock reads. */
export interface TenantLock {
  /** The tenant's head seq (0 if new). */
  head: number;
  /**
   * The version of the tenant's webhook endpoints: every endpoint change bumps it in its own transaction,
   * under the same lock. A commit that reads a version its node has not seen reloads the endpoints
   * before planning deliveries, so every event committed after an endpoint change, on any node, is
   * planned against it.
   */
  hooksVersion: number;
  /**
   * The version of the tenant's collection settings, bumped by every `putCollection` in its own
   * transaction under the same lock: a commit that reads a version its node has not seen reloads the
   * settings (strategy, schema, retention) before applying mutations.
   */
  collectionsVersion: number;
}

/**
 * A tenant's commit pipeline, as `commitTenant` sees it: the driver calls `prepared` once the tenant's
 * next commit may start while this one is still in flight (it checks that this one committed), and
 * waits for `after` (the tenant's previous commit settled) before anything that would reorder seqs.
 */
export interface CommitPipeline {
  prepared(): void;
  after: Promise<unknown>;
}

/** One write transaction. Methods run in order; the transaction commits when the callback resolves. */
export interface WriteTx {
  /** Takes the tenant's write lock for the rest of the transaction. */
  lockTenant(tenant: string): Promise<TenantLock>;
  getResults(tenant: string, keys: string[]): Promise<Map<string, MutationResult>>;
  getRecords(tenant: string, keys: RecordKey[]): Promise<Map<string, SyncRecord>>;
  /** The data each record had at the given version, from its log entries (absent: not kept). */
  getVersionData(tenant: string, keys: VersionKey[]): Promise<Map<string, Record<string, unknown>>>;
  getConflict(tenant: string, id: string): Promise<Conflict | null>;
  writeBatch(tenant: string, batch: TenantBatch): Promise<void>;
}

/** Which superseded versions of a collection's records to drop from the log. */
export interface RetentionPolicy {
  /** Keep at most this many versions per record (the current one always stays). */
  keepVersions: number | null;
  /** Drop superseded versions written before this ISO time. */
  before: string | null;
}

export interface ConflictQuery {
  status: 'open' | 'resolved' | 'all';
  collection?: string;
  limit: number;
}

export interface ListQuery {
  limit: number;
  after?: string;
  filter: Record<string, string>;
  includeDeleted: boolean;
}

export interface EventQuery {
  afterSeq: number;
  limit: number;
  /** Domain events of this type only. */
  type?: string;
  /** Audit filters: all optional, combined with AND. `from`/`to` are ISO times (to exclusive). */
  kind?: 'record' | 'event';
  actor?: string;
  collection?: string;
  recordId?: string;
  from?: string;
  to?: string;
}

/** The WHERE conditions of an event query beyond tenant and seq, with `?` placeholders. */
export function eventQueryConditions(q: EventQuery): { clauses: string[]; params: unknown[] } {
  const clauses: string[] = [];
  const params: unknown[] = [];
  const add = (clause: string, value: unknown) => {
    clauses.push(clause);
    params.push(value);
  };
  if (q.type !== undefined) {
    clauses.push("kind = 'event'");
    add('type = ?', q.type);
  }
  if (q.kind !== undefined) add('kind = ?', q.kind);
  if (q.actor !== undefined) add('actor = ?', q.actor);
  if (q.collection !== undefined) add('collection = ?', q.collection);
  if (q.recordId !== undefined) add('record_id = ?', q.recordId);
  if (q.from !== undefined) add('ts >= ?', q.from);
  if (q.to !== undefined) add('ts < ?', q.to);
  return { clauses, params };
}

export interface EventCount {
  kind: 'record' | 'event';
  /** The collection of record changes; null for domain events. */
  collection: string | null;
  count: number;
}

export interface ApiKeyRow {
  id: string;
  /** null for the server-wide admin key. */
  tenant: string | null;
  label: string | null;
}

/**
 * Deletes rows that outlived their retention, at most `limit` per call, oldest first where an index
 * allows it, so the retention job works in bounded batches. Each returns how many rows it deleted.
 */
export interface ExpiryStore {
  /** Finished webhook deliveries (`success` or `failed`, dead letters) completed before `beforeMs`, with their attempts. */
  pruneDeliveries(status: 'success' | 'failed', beforeMs: number, limit: number): Promise<number>;
  /** A tenant's conflicts resolved (or, without a resolution time, created) before this ISO time. */
  pruneResolvedConflicts(tenant: string, before: string, limit: number): Promise<number>;
  /** Devices last seen (or, never seen, last registered) before this ISO time, with their cursors. */
  pruneDevices(before: string, limit: number): Promise<number>;
  /** Cursors of device ids that are not registered, not updated since this ISO time. */
  pruneCursors(before: string, limit: number): Promise<number>;
}

export interface Store {
  readonly kind: 'sqlite' | 'postgres';
  /** Webhook endpoints, the delivery outbox and delivery attempts. */
  readonly webhooks: WebhookStore;
  /** Deletion of rows past their retention (log/retention.ts runs it). */
  readonly expiry: ExpiryStore;
  /** Branches of records: fork points and merges (the branches' versions are ordinary records). */
  readonly branches: BranchStore;
  /** The sealed-fields backfill's batches and progress (store/sealed-backfill.ts). */
  readonly sealedBackfill: SealedBackfillStore;
  /** Compaction of superseded record versions to deltas and keyframes (store/history). */
  readonly history: HistoryStore;
  /** Applies pending migrations under a lock; reports each one applied. */
  migrate(progress?: (message: string) => void): Promise<number>;
  transaction<T>(fn: (tx: WriteTx) => Promise<T>): Promise<T>;
  /**
   * One tenant's commit: as `transaction`, with fn locking and writing `tenant` only. A driver may run
   * fn first against state it remembers and commit its writes in one call that checks that state
   * under the tenant's lock, running fn again in a transaction when the state moved; so fn must have
   * no effect but its result until it resolves. Drivers without it use `transaction`.
   */
  commitTenant?<T>(tenant: string, fn: (tx: WriteTx) => Promise<T>, pipeline?: CommitPipeline): Promise<T>;
  readEvents(tenant: string, query: EventQuery): Promise<LogEvent[]>;
  headSeq(tenant: string): Promise<number>;
  getRecord(tenant: string, collection: string, id: string): Promise<SyncRecord | null>;
  listRecords(tenant: string, collection: string, query: ListQuery): Promise<SyncRecord[]>;
  /** Current live records matching the filter and the head seq they reflect, read in one snapshot. */
  snapshot(
    tenant: string,
    collection: string,
    filter: Record<string, string>,
  ): Promise<{ records: SyncRecord[]; cursor: number }>;
  listConflicts(tenant: string, query: ConflictQuery): Promise<Conflict[]>;
  /** How many conflicts wait for a resolution, per tenant that has any (metrics). */
  countOpenConflicts(): Promise<{ tenant: string; count: number }[]>;
  getConflict(tenant: string, id: string): Promise<Conflict | null>;
  getCollections(tenant: string): Promise<Map<string, CollectionSettings>>;
  /** Stores a collection's settings and bumps the tenant's collections version (TenantLock), in one transaction. */
  putCollection(tenant: string, name: string, settings: CollectionSettings): Promise<void>;
  /** Looks an API key up by the SHA-256 hex of its secret. */
  findApiKey(hash: string): Promise<ApiKeyRow | null>;
  createApiKey(row: ApiKeyRow & { hash: string }): Promise<void>;
  /** Creates the key of `row.id`, or replaces its hash and label in one statement (key rotation). */
  replaceApiKey(row: ApiKeyRow & { hash: string }): Promise<void>;
  /** Forgets the key of this id (revocation); false when there was none. */
  deleteApiKey(id: string): Promise<boolean>;
  saveCursor(tenant: string, user: string, device: string, seq: number): Promise<void>;
  getCursor(tenant: string, user: string, device: string): Promise<number | null>;
  /** Creates or replaces a registered device (keyed by tenant, `device.user` and `device.id`). */
  putDevice(tenant: string, device: Device): Promise<void>;
  getDevice(tenant: string, user: string, id: string): Promise<Device | null>;
  /** A user's devices, or (no user) every device of the tenant; by user, then id. */
  listDevices(tenant: string, user?: string): Promise<Device[]>;
  /** Forgets a device and its cursor; false when there was none. */
  deleteDevice(tenant: string, user: string, id: string): Promise<boolean>;
  /**
   * How many of the (at most `limit`) log entries after `afterSeq` there are, by kind and collection
   * (a device's pending count; the limit bounds the work of a connect).
   */
  countEventsAfter(tenant: string, afterSeq: number, limit: number): Promise<EventCount[]>;
  /**
   * Deletes superseded record versions from the log per the policy; never a record's current version,
   * so every record can still be rebuilt from the log. Returns how many entries were dropped.
   */
  compactHistory(tenant: string, collection: string, policy: RetentionPolicy): Promise<number>;
  /** Forgets idempotency results recorded before this ISO time; returns how many. */
  pruneResults(before: string): Promise<number>;
  /** Every tenant that has a log, and the collections a tenant has records in (maintenance, replay). */
  listTenants(): Promise<string[]>;
  listRecordCollections(tenant: string): Promise<string[]>;
  ping(): Promise<void>;
  close(): Promise<void>;
}

export function recordKey(collection: string, id: string): string {
  return `${collection}\u0000${id}`;
}

export function versionKey(collection: string, id: string, version: number): string {
  return `${collection}\u0000${id}\u0000${version}`;
}
