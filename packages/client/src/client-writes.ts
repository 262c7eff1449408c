/**
 * The client's write path and its record caches: a write becomes a mutation (checked, sized, stamped
 * with the hybrid clock and the cached base version), is applied optimistically to its collection's
 * cache and handed to the offline queue; its result settles the cache again. Also restores what an
 * earlier client left in the storage (the replica's records and the queued writes) into the caches.
 */
import type { Mutation, MutationResult } from '@syncbridge/protocol';
import { CollectionCache } from './cache.ts';
import type { ClientEvents, WriteOutcome } from './client-options.ts';
import type { WriteRequest } from './collection.ts';
import type { TypedEventEmitter } from './emitter.ts';
import { SyncClientError } from './errors.ts';
import { splitFirstPage } from './first-page.ts';
import type { ClientClock } from './hlc.ts';
import { writeProblem } from './mutation-check.ts';
import { jsonBytes, MutationQueue } from './queue.ts';
import type { RequestTracker } from './requests.ts';
import type { QueuedMutation, QueueStorage, ReplicaState } from './storage/types.ts';

export interface WritePathOptions {
  storage: QueueStorage;
  requests: RequestTracker;
  isConnected: () => boolean;
  clock: ClientClock;
  emitter: TypedEventEmitter<ClientEvents>;
  maxMessageBytes: number;
  /** Whose writes these are (tenant + user), stored with each queued write; null when unknown. */
  scope: Promise<string | null>;
  /** A cached record changed (the replica stores it). */
  recordChanged: (collection: string, id: string) => void;
  /** A write was answered `conflict` (its conflict may not be known yet). */
  conflicted: (result: MutationResult) => void;
  /** Called before every write: restores what is left of the storage first, so the write builds on it. */
  beforeWrite: () => void;
}

function effectiveStatus(result: MutationResult): MutationResult['status'] {
  return result.status === 'duplicate' ? (result.originalStatus ?? 'applied') : result.status;
}

export class WritePath {
  readonly caches = new Map<string, CollectionCache>();
  readonly queue: MutationQueue;
  /** The collection of every write still queued, to find its cache by mid. */
  private readonly collectionOfMid = new Map<string, string>();
  private reportedPendingCount = 0;
  /** The records `restore` left after the first pages, by collection. */
  private later: Array<[string, ReplicaState['records']]> = [];

  constructor(private readonly options: WritePathOptions) {
    const { emitter } = options;
    this.queue = new MutationQueue({
      storage: options.storage,
      requests: options.requests,
      isConnected: options.isConnected,
      onSent: (mid) => this.cacheOfMid(mid)?.markSent(mid),
      onSettled: (item, result) => this.settled(item, result),
      onDropped: (item, error) => {
        this.collectionOfMid.delete(item.mid);
        this.cache(item.mutation.collection).settle(item.mid, null);
        this.queueChanged();
        emitter.emit('error', error);
      },
      onError: (error) => emitter.emit('error', error),
      maxMessageBytes: options.maxMessageBytes,
      scope: options.scope,
    });
  }

  /** The cache of a collection, made on first use. */
  cache(name: string): CollectionCache {
    let cache = this.caches.get(name);
    if (!cache) {
      cache = new CollectionCache(name, (id) => this.options.recordChanged(name, id));
      this.caches.set(name, cache);
    }
    return cache;
  }

  pendingCount(): number {
    return this.queue.pendingCount();
  }

  write(request: WriteRequest): Promise<MutationResult> {
    this.options.beforeWrite();
    const { maxMessageBytes } = this.options;
    const cache = this.cache(request.collection);
    const mutation: Mutation = {
      mid: crypto.randomUUID(),
      collection: request.collection,
      id: request.id,
      op: request.op,
      hlc: this.options.clock.tick(),
    };
    if (request.data !== undefined) mutation.data = request.data;
    const baseVersion = request.op === 'increment' ? undefined : cache.baseVersion(request.id);
    if (baseVersion !== undefined) mutation.baseVersion = baseVersion;
    const problem = writeProblem(mutation.collection, mutation.id, mutation.data);
    if (problem)
      return Promise.reject(new SyncClientError('BAD_REQUEST', `invalid ${request.op}: ${problem}`));
    const bytes = jsonBytes(mutation) + 64;
    if (bytes > maxMessageBytes) {
      return Promise.reject(
        new SyncClientError(
          'PAYLOAD_TOO_LARGE',
          `a ${request.op} of ${bytes} bytes exceeds the ${maxMessageBytes}-byte message limit`,
        ),
      );
    }
    this.collectionOfMid.set(mutation.mid, mutation.collection);
    cache.addPending({
      mid: mutation.mid,
      id: mutation.id,
      op: mutation.op,
      data: mutation.data,
      sent: false,
    });
    const result = this.queue.enqueue(mutation);
    this.queueChanged();
    // Optimistic writes are often not awaited: a CLOSED or STORAGE rejection must not crash the process
    // as an unhandled rejection. Whoever awaits still gets it; the `result` and `error` events report it too.
    result.catch(() => undefined);
    return result;
  }

  /**
   * Puts what the storage held into the caches: the replica's records, with the queued writes on top.
   * With `firstPage`, each collection gets only its first `firstPage` records in id order now (and every
   * record a queued write touches), and the rest is left to `restoreRest()`.
   */
  restore(items: QueuedMutation[], state: ReplicaState | null, firstPage?: number): void {
    const byCollection = new Map<string, { records: ReplicaState['records']; items: QueuedMutation[] }>();
    const group = (name: string) => {
      let entry = byCollection.get(name);
      if (!entry) {
        entry = { records: [], items: [] };
        byCollection.set(name, entry);
      }
      return entry;
    };
    // Records come grouped by collection from every storage: one lookup per run of a collection.
    let runName: string | null = null;
    let run: ReplicaState['records'] = [];
    for (const record of state?.records ?? []) {
      if (runName !== record.collection) {
        runName = record.collection;
        run = group(runName).records;
      }
      run.push(record);
    }
    for (const item of items) {
      this.collectionOfMid.set(item.mid, item.mutation.collection);
      group(item.mutation.collection).items.push(item);
    }
    // Every split is made before the first change is emitted: a listener may write (and so call
    // `restoreRest`) from inside it.
    const now: Array<[string, ReplicaState['records'], QueuedMutation[]]> = [];
    for (const [name, { records, items: list }] of byCollection) {
      if (firstPage !== undefined && records.length > firstPage) {
        const split = splitFirstPage(records, firstPage, new Set(list.map((item) => item.mutation.id)));
        now.push([name, split.page, list]);
        this.later.push([name, split.rest]);
      } else now.push([name, records, list]);
    }
    for (const [name, records, list] of now) {
      // Restored writes may have reached the server before the restart: treat them as sent.
      this.cache(name).restore(
        records,
        list.map(({ mid, mutation }) => ({
          mid,
          id: mutation.id,
          op: mutation.op,
          data: mutation.data,
          sent: true,
        })),
      );
    }
    if (items.length > 0) this.queueChanged();
  }

  /** Restores what `restore` left after the first pages. */
  restoreRest(): void {
    const later = this.later;
    this.later = [];
    for (const [name, records] of later) this.cache(name).restore(records, []);
  }

  /** Restores more of the replica's records (the rest after a first page): no queued writes with them. */
  restoreMore(records: ReplicaState['records']): void {
    let start = 0;
    for (let i = 1; i <= records.length; i++) {
      const name = records[start]?.collection;
      if (i < records.length && records[i]!.collection === name) continue;
      if (name !== undefined) this.cache(name).restore(records.slice(start, i), []);
      start = i;
    }
  }

  private cacheOfMid(mid: string): CollectionCache | undefined {
    const name = this.collectionOfMid.get(mid);
    return name === undefined ? undefined : this.caches.get(name);
  }

  private queueChanged(): void {
    const pendingCount = this.queue.pendingCount();
    if (pendingCount === this.reportedPendingCount) return;
    this.reportedPendingCount = pendingCount;
    this.options.emitter.emit('queue', { pendingCount });
  }

  private settled(item: QueuedMutation, result: MutationResult): void {
    this.collectionOfMid.delete(item.mid);
    this.options.clock.observe(result.record?.hlc);
    this.cache(item.mutation.collection).settle(item.mid, result);
    this.queueChanged();
    const outcome: WriteOutcome = { mutation: item.mutation, result };
    this.options.emitter.emit('result', outcome);
    if (effectiveStatus(result) === 'conflict') this.options.conflicted(result);
  }
}
