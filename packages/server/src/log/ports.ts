/**
 * The storage ports of the write path and of the log's readers, defined here beside their users: the
 * log writer takes a LogStore, the routes, sequencer, projections and replay a RecordReader, the
 * conflict routes and metrics a ConflictStore; routes that write take LogWrites, not the whole writer.
 * The SQLite and PostgreSQL stores implement them; the composition root (startup/storage.ts) hands each
 * part the ports it uses over one connection. No driver type may appear here.
 */
import type {
  Conflict,
  LogEvent,
  Mutation,
  MutationResult,
  NewDomainEvent,
  SyncRecord,
} from '@syncbridge/protocol';
import type { Principal } from '../auth/principal.ts';
import type { CommitPipeline, ConflictQuery, EventQuery, ListQuery, WriteTx } from '../store/types.ts';
import type { PublishResult, ResolveRequest } from './pending-writes.ts';

/** The write side of every tenant's log: one transaction per group commit (see store/types.ts WriteTx). */
export interface LogStore {
  transaction<T>(fn: (tx: WriteTx) => Promise<T>): Promise<T>;
  /**
   * One tenant's commit, on a store that commits tenants independently (PostgreSQL): the log writer
   * then runs a commit pipeline per tenant (commit-pipelines.ts). See store/types.ts Store.commitTenant.
   */
  commitTenant?<T>(tenant: string, fn: (tx: WriteTx) => Promise<T>, pipeline?: CommitPipeline): Promise<T>;
  /**
   * One writer for every tenant (SQLite): the log writer keeps one queue and one group commit at a
   * time; with `commitTenant`, a group's tenants are committed one call each, all at once, and the store
   * makes them durable together (SQLite's commit thread).
   */
  readonly singleWriter?: boolean;
}

/** Reads of a tenant's log and current records. */
export interface RecordReader {
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
  /** The collections a tenant has records in. */
  listRecordCollections(tenant: string): Promise<string[]>;
}

/** The manual conflict queue, as stored by the write path. */
export interface ConflictStore {
  listConflicts(tenant: string, query: ConflictQuery): Promise<Conflict[]>;
  getConflict(tenant: string, id: string): Promise<Conflict | null>;
  /** How many conflicts wait for a resolution, per tenant that has any (metrics). */
  countOpenConflicts(): Promise<{ tenant: string; count: number }[]>;
}

/** How a publish is made: `system` for the server's own `syncbridge.*` events, never for a caller's. */
export interface PublishOptions {
  system?: boolean;
}

/** What a route needs to write: the log writer's requests, nothing of its lifecycle (LogWriter implements it). */
export interface LogWrites {
  mutate(principal: Principal, mutations: Mutation[]): Promise<MutationResult[]>;
  /**
   * Appends a domain event. Types under `syncbridge.` are the server's own (audit, alerts, rule changes):
   * refused with FORBIDDEN unless `options.system` says the server itself is publishing.
   */
  publish(principal: Principal, event: NewDomainEvent, options?: PublishOptions): Promise<PublishResult>;
  resolve(principal: Principal, request: ResolveRequest): Promise<MutationResult>;
  /** Throws BAD_REQUEST when `value` cannot be stored within the writer's limits. */
  assertStorable(value: unknown, what: string): void;
}
