/**
 * @syncbridge/client: the TypeScript SDK for syncbridge, for browsers and Node.
 *
 * @example
 * import { SyncClient, FileStorage } from '@syncbridge/client';
 * const client = new SyncClient({ url: 'ws://127.0.0.1:4025/v1/realtime', token, storage: new FileStorage('./queue.json') });
 * const todos = client.collection<{ title: string; done: boolean }>('todos');
 * await todos.put('t1', { title: 'x', done: false });
 */

export type {
  BranchDiffResponse,
  BranchInfo,
  BranchMergeResponse,
  BranchResponse,
  Conflict,
  Depth,
  DepthLevel,
  Device,
  DeviceInfo,
  DevicePending,
  MutationResult,
  SyncRecord,
  Tick,
} from '@syncbridge/protocol';
// Through package.json `imports`: browsers get a stand-in that never imports node:fs.
export { FileStorage } from '#platform/file-storage';
export type { BackoffOptions } from './backoff.ts';
export { Branch } from './branches.ts';
export type { CachedRecord, ChangeSource, CollectionChange, RecordChange } from './cache.ts';
export {
  type ClientEvents,
  type ConflatedCatchUp,
  httpBaseOf,
  type PublishResult,
  type Resolution,
  type ServerPending,
  SyncClient,
  type SyncClientOptions,
  type WriteOutcome,
} from './client.ts';
export { type ConnectionState, type StatusChange, StatusReason, type Transport } from './codes.ts';
export {
  Collection,
  type CollectionSubscribeOptions,
  type Increments,
  type MergePatch,
} from './collection.ts';
export type { ConflictDecision, ConflictHandler } from './conflicts.ts';
export type { TokenSource } from './connection.ts';
export { type Listener, TypedEventEmitter } from './emitter.ts';
export { type ClientErrorCode, SyncClientError } from './errors.ts';
export { type DomainEvent, EventStream, type EventStreamFilter } from './events.ts';
export { type FilterValue, matchesFilter, type RecordFilter } from './filters.ts';
export { type IdbFactory, IndexedDbStorage, type IndexedDbStorageOptions } from './storage/indexeddb.ts';
export { MemoryStorage } from './storage/memory.ts';
export {
  type ClientStorage,
  type QueuedMutation,
  type QueueStorage,
  REPLICA_SCHEMA_VERSION,
  type ReplicaState,
  type ReplicaStorage,
  type ReplicaWrite,
  type StoredChannel,
  type StoredRecord,
} from './storage/types.ts';
export { type TopicEvents, type TopicOptions, TopicStream, topicChannel } from './topics.ts';
export type { WebSocketConstructor, WebSocketLike } from './transport.ts';
