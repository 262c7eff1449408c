/**
 * The shared store behind `useCollection` and `useRecord`: one `collection.subscribe` per client,
 * collection and filter, holding the matching records as one array that keeps its identity until a
 * record in it changes (React compares snapshots with `Object.is`), and telling each record's readers
 * only about changes to that record. It reads the client's cache and never writes to it.
 */
import {
  type CachedRecord,
  type Collection,
  matchesFilter,
  type RecordFilter,
  type SyncClient,
} from '@syncbridge/client';
import { keepIfSame, type SharedStore, type StoreHandle, sharedStore } from './shared-stores.ts';

type Listener = () => void;

export class CollectionStore<T extends object> implements SharedStore {
  private records: readonly CachedRecord<T>[] | null = null;
  private readonly listListeners = new Set<Listener>();
  private readonly recordListeners = new Map<string, Set<Listener>>();
  private unsubscribe: (() => void) | null = null;
  /** Why the subscription could not start (an invalid name or filter): thrown at the next read. */
  private failure: unknown = null;

  constructor(
    private readonly collection: Collection<T>,
    readonly filter: RecordFilter | undefined,
  ) {}

  start(): void {
    this.records = keepIfSame(this.records, this.collection.list(this.filter));
    try {
      this.unsubscribe = this.subscribeCollection();
    } catch (err) {
      // Thrown from the next read, inside a render, where an error boundary can show it.
      this.failure = err;
      this.notifyAll();
    }
  }

  private subscribeCollection(): () => void {
    return this.collection.subscribe(
      (records, change) => {
        const before = this.records;
        this.records = keepIfSame(before, records);
        if (this.records !== before) for (const listener of [...this.listListeners]) listener();
        for (const { id } of change.changes) {
          const listeners = this.recordListeners.get(id);
          if (listeners) for (const listener of [...listeners]) listener();
        }
      },
      this.filter ? { filter: this.filter } : {},
    );
  }

  stop(): void {
    this.unsubscribe?.();
    this.unsubscribe = null;
    this.failure = null;
  }

  /** The matching records, sorted by id: the same array for as long as none of them changed. */
  list(): readonly CachedRecord<T>[] {
    if (this.failure) throw this.failure;
    // Not subscribed yet (a first render) or any more: read the cache, keeping the array if nothing moved.
    if (!this.unsubscribe || !this.records) {
      this.records = keepIfSame(this.records, this.collection.list(this.filter));
    }
    return this.records;
  }

  /** The record, when it matches the filter: the cache's own object, the same until it changes. */
  record(id: string): CachedRecord<T> | undefined {
    if (this.failure) throw this.failure;
    const record = this.collection.get(id);
    return record && matchesFilter(record.data, this.filter) ? record : undefined;
  }

  onList(listener: Listener): () => void {
    this.listListeners.add(listener);
    return () => {
      this.listListeners.delete(listener);
    };
  }

  private notifyAll(): void {
    for (const listener of [...this.listListeners]) listener();
    for (const listeners of [...this.recordListeners.values()])
      for (const listener of [...listeners]) listener();
  }

  onRecord(id: string, listener: Listener): () => void {
    let listeners = this.recordListeners.get(id);
    if (!listeners) {
      listeners = new Set();
      this.recordListeners.set(id, listeners);
    }
    listeners.add(listener);
    return () => {
      listeners.delete(listener);
      if (listeners.size === 0 && this.recordListeners.get(id) === listeners) this.recordListeners.delete(id);
    };
  }
}

/** A stable text for a filter: the same fields and values in any order give the same key. */
export function filterKey(filter: RecordFilter | undefined): string {
  if (!filter) return '';
  return JSON.stringify(
    Object.keys(filter)
      .sort()
      .map((field) => [field, String(filter[field])]),
  );
}

/** The shared store of a collection (and filter) of `client`. */
export function collectionStore<T extends object>(
  client: SyncClient,
  name: string,
  filter: RecordFilter | undefined,
): StoreHandle<CollectionStore<T>> {
  const key = `records\u0000${name}\u0000${filterKey(filter)}`;
  return sharedStore(client, key, () => new CollectionStore<T>(client.collection<T>(name), filter));
}
