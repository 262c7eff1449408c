/**
 * Where the client keeps what must outlive it: the offline queue and the replica.
 *
 * The queue: a storage keeps queued mutations in the order they were appended and must have them
 * durably before `append` resolves: the client sends a mutation only after that, so a write the
 * application was told is queued survives a crash or a restart.
 *
 * The replica: the server state of the records of every subscribed channel and each channel's cursor,
 * for one scope (tenant + user). One `writeReplica` is one atomic step: a channel's cursor is never
 * stored without the records it covers. A storage holds the replica of one scope at a time and wipes
 * it when another scope loads; queued mutations are never wiped, only held back for their own scope.
 * A storage without the replica methods (a `QueueStorage` written before them) keeps the queue only.
 */
import type { Mutation } from '@syncbridge/protocol';
import type { SyncClientError } from '../errors.ts';

export interface QueuedMutation {
  mid: string;
  mutation: Mutation;
  /** ISO time it was queued. */
  queuedAt: string;
  /** The tenant + user it was written by (absent in queues written before scopes existed). */
  scope?: string;
}

export interface QueueStorage {
  /** Everything still queued, oldest first. Called once, before any other queue method. */
  load(): Promise<QueuedMutation[]>;
  append(entries: QueuedMutation[]): Promise<void>;
  remove(mids: string[]): Promise<void>;
  close(): Promise<void>;
  /**
   * Optional: hands the client the storage's errors that no call returns (IndexedDB blocked by another
   * tab, or closed by a newer version's upgrade); the client reports them as its `error` event.
   */
  reportErrorsTo?(listener: (error: SyncClientError) => void): () => void;
}

/** The server state of one record as the replica keeps it (`data: null`: deleted at `version`). */
export interface StoredRecord {
  collection: string;
  id: string;
  data: Record<string, unknown> | null;
  version: number;
  /** The seq of the change that brought this version (or the snapshot's cursor). */
  seq: number;
}

/** A channel the replica can resume: the last seq its records include, and when it was last used. */
export interface StoredChannel {
  channel: string;
  cursor: number;
  /** Milliseconds since the epoch; the least recently used channels are evicted first. */
  usedAt: number;
}

export interface ReplicaState {
  records: StoredRecord[];
  channels: StoredChannel[];
}

/** One atomic change of the replica. */
export interface ReplicaWrite {
  records: StoredRecord[];
  /** Records to forget, as `[collection, id]`. */
  forget: Array<[collection: string, id: string]>;
  channels: StoredChannel[];
  dropChannels: string[];
}

/** The replica with a first page of each collection's records now, and the rest on demand. */
export interface ReplicaFirstPage {
  /** Every channel; of the records, each collection's `size` smallest ids and those queued writes touch. */
  state: ReplicaState;
  /** The other records, read now. Throws a STORAGE error when they cannot be read. */
  rest(): StoredRecord[];
}

/** The local schema of the replica; a storage holding another version drops its replica (never its queue). */
export const REPLICA_SCHEMA_VERSION = 1;

export interface ReplicaStorage {
  /**
   * The replica of `scope`. When the storage holds another scope's replica (another user or tenant), or
   * one of another schema version, it wipes that first and answers empty.
   */
  loadReplica(scope: string): Promise<ReplicaState>;
  /** Applies one change to the replica of `scope` (the scope last loaded) atomically. */
  writeReplica(scope: string, write: ReplicaWrite): Promise<void>;
  /**
   * Optional: `loadReplica`, answering with a first page of each collection before reading the rest
   * (what `replicaFirstPage` uses when the storage has it). `rest()` must be called before any other
   * replica method.
   */
  loadReplicaFirstPage?(scope: string, size: number): Promise<ReplicaFirstPage>;
}

/** A storage for both the queue and the replica, as FileStorage, IndexedDbStorage and MemoryStorage are. */
export type ClientStorage = QueueStorage & ReplicaStorage;

export function hasReplica(storage: QueueStorage): storage is ClientStorage {
  const candidate = storage as Partial<ReplicaStorage>;
  return typeof candidate.loadReplica === 'function' && typeof candidate.writeReplica === 'function';
}
