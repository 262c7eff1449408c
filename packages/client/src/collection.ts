/**
 * `client.collection<T>(name)`: reads from the local cache, live subscriptions that keep it current,
 * and optimistic writes. A write shows in `get`/`list` at once, goes through the offline queue, and
 * resolves with the server's result; a rejected write is rolled back in the cache.
 */
import type { MutationOp, MutationResult } from '@syncbridge/protocol';
import type { Branch } from './branches.ts';
import type { CachedRecord, CollectionCache, CollectionChange } from './cache.ts';
import { SyncClientError } from './errors.ts';
import { matchesFilter, type RecordFilter, recordsChannel } from './filters.ts';
import type { JsonObject } from './rebase.ts';
import type { SubscriptionManager } from './subscriptions.ts';

/** A JSON merge patch for `T`: fields to set, `null` to remove one, nested objects merged. */
export type MergePatch<T> = {
  [K in keyof T]?:
    | (T[K] extends readonly unknown[] ? T[K] : T[K] extends object ? MergePatch<T[K]> : T[K])
    | null;
};

/** Numeric deltas for the number fields of `T`. */
export type Increments<T> = { [K in keyof T as T[K] extends number | undefined ? K : never]?: number };

export interface WriteRequest {
  collection: string;
  id: string;
  op: MutationOp;
  data?: JsonObject;
}

export interface CollectionDeps {
  cache: CollectionCache;
  subscriptions: SubscriptionManager;
  write: (request: WriteRequest) => Promise<MutationResult>;
  /** Resolves, once the storage is loaded, whether the replica holds this collection (and filter). */
  stored: (filter: RecordFilter | undefined) => Promise<boolean>;
  /** Makes the named branch of this collection (branches.ts); absent on a branch. */
  branch?: (name: string) => Branch<object>;
}

export interface CollectionSubscribeOptions {
  /** Only records whose fields equal these values (dotted paths allowed), as a filtered channel. */
  filter?: RecordFilter;
}

export class Collection<T extends object = JsonObject> {
  constructor(
    readonly name: string,
    private readonly deps: CollectionDeps,
  ) {}

  /**
   * A branch of this collection's records: the same API (its own cache, channel and writes), plus
   * `fork`, `diff`, `merge` and `deleteBranch` (docs/sdk.md, "Branches").
   * @example const review = docs.branch('review'); await review.fork('plan'); await review.patch('plan', { title: 'v2' });
   */
  branch(name: string): Branch<T> {
    if (!this.deps.branch)
      throw new SyncClientError('BAD_REQUEST', `${this.name} is a branch: it has no branches`);
    return this.deps.branch(name) as unknown as Branch<T>;
  }

  /** The record as this client sees it now (server state plus pending local writes), or undefined. */
  get(id: string): CachedRecord<T> | undefined {
    return this.deps.cache.get(id) as CachedRecord<T> | undefined;
  }

  /**
   * The cached records matching `filter`, sorted by id.
   * @example todos.list({ done: false }).map((r) => r.data.title)
   */
  list(filter?: RecordFilter): CachedRecord<T>[] {
    return this.deps.cache.list(filter) as CachedRecord<T>[];
  }

  /**
   * Subscribes to the collection (or the records matching `filter`) on the server, keeps the cache
   * current, and calls `listener` with the matching records once they are loaded and after every
   * change (local, remote, result or rollback). When the replica holds them from an earlier run, the
   * first call comes from the storage at once (`source: 'storage'`), online or not, and the channel
   * catches up from its stored cursor. Returns the function that stops it.
   *
   * @example
   * const off = stock.subscribe((records, change) => render(records), { filter: { locationId: 'wh-1' } });
   */
  subscribe(
    listener: (records: CachedRecord<T>[], change: CollectionChange<T>) => void,
    options: CollectionSubscribeOptions = {},
  ): () => void {
    const { filter } = options;
    const { cache } = this.deps;
    let delivered = false;
    let active = true;
    const offChange = cache.events.on('change', (change) => {
      // Without a filter every change is relevant: no pass over the 100,000 of a restore.
      const relevant = filter
        ? change.changes.filter(
            (c) =>
              (c.before && matchesFilter(c.before.data, filter)) ||
              (c.after && matchesFilter(c.after.data, filter)),
          )
        : change.changes;
      if (relevant.length === 0) return;
      delivered = true;
      listener(this.list(filter), { source: change.source, changes: relevant } as CollectionChange<T>);
    });
    void this.deps.stored(filter).then((stored) => {
      if (!stored || !active || delivered) return;
      delivered = true;
      listener(this.list(filter), { source: 'storage', changes: [] });
    });
    const release = this.deps.subscriptions.acquire(recordsChannel(this.name, filter), {
      onEvent: (event) => cache.applyEvent(event),
      onSnapshot: (records, info) => cache.applySnapshot(records, { ...info, filter }),
      onSynced: () => {
        queueMicrotask(() => {
          if (!active || delivered) return;
          delivered = true;
          listener(this.list(filter), { source: 'snapshot', changes: [] });
        });
      },
    });
    return () => {
      active = false;
      offChange();
      release();
    };
  }

  /**
   * Replaces the record's data. Optimistic: visible in `get` at once; resolves with the server's
   * result (`status` says whether it was applied), which may come after a reconnect.
   * @example const result = await todos.put('t1', { title: 'Buy milk', done: false });
   */
  put(id: string, data: T): Promise<MutationResult> {
    return this.deps.write({ collection: this.name, id, op: 'put', data: data as JsonObject });
  }

  /**
   * Changes some fields (RFC 7396 merge patch: `null` removes a field).
   * @example await todos.patch('t1', { done: true });
   */
  patch(id: string, patch: MergePatch<T>): Promise<MutationResult> {
    return this.deps.write({ collection: this.name, id, op: 'patch', data: patch as JsonObject });
  }

  /**
   * Adds deltas to number fields; increments from many clients never conflict, and each counts once.
   * @example await stock.increment('sku-1', { qty: -1 });
   */
  increment(id: string, deltas: Increments<T>): Promise<MutationResult> {
    return this.deps.write({ collection: this.name, id, op: 'increment', data: deltas as JsonObject });
  }

  /**
   * Deletes the record; a delete of a record the server does not have is rejected (NOT_FOUND) and rolled back.
   * @example await todos.delete('t1');
   */
  delete(id: string): Promise<MutationResult> {
    return this.deps.write({ collection: this.name, id, op: 'delete' });
  }
}
