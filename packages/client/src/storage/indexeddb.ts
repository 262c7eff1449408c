/**
 * Queue storage in IndexedDB (browsers). One object store keyed by an increasing position keeps the
 * queue's order; each append or removal is one transaction, resolved when it has committed.
 * Importing this module anywhere is safe: IndexedDB is looked up only when the queue is first loaded,
 * and its absence (Node) is reported then as a STORAGE error.
 *
 * @example
 * const client = new SyncClient({ url, token, storage: new IndexedDbStorage({ name: 'todo-app' }) });
 */
import { SyncClientError } from '../errors.ts';
import type { QueuedMutation, QueueStorage } from './types.ts';

// The few parts of the IndexedDB API used here, typed structurally so that no DOM typings are needed.
interface IdbRequest<T> {
  result: T;
  error: unknown;
  onsuccess: (() => void) | null;
  onerror: (() => void) | null;
}
interface IdbOpenRequest extends IdbRequest<IdbDatabase> {
  onupgradeneeded: (() => void) | null;
}
interface IdbObjectStore {
  getAll(): IdbRequest<unknown[]>;
  put(value: unknown): IdbRequest<unknown>;
  delete(key: number): IdbRequest<unknown>;
}
interface IdbTransaction {
  objectStore(name: string): IdbObjectStore;
  oncomplete: (() => void) | null;
  onerror: (() => void) | null;
  onabort: (() => void) | null;
  error: unknown;
}
interface IdbDatabase {
  objectStoreNames: { contains(name: string): boolean };
  createObjectStore(name: string, options: { keyPath: string }): unknown;
  transaction(
    store: string,
    mode: 'readonly' | 'readwrite',
    options?: { durability?: 'default' | 'strict' | 'relaxed' },
  ): IdbTransaction;
  close(): void;
}
export interface IdbFactory {
  open(name: string, version?: number): IdbOpenRequest;
}

interface StoredEntry extends QueuedMutation {
  position: number;
}

const STORE = 'mutations';

export interface IndexedDbStorageOptions {
  /** Database name; one per application (and per user, if several share a browser). Default `syncbridge-queue`. */
  name?: string;
  /** The IndexedDB factory; defaults to the global `indexedDB`. */
  indexedDB?: IdbFactory;
}

function requestResult<T>(request: IdbRequest<T>): Promise<T> {
  return new Promise((resolve, reject) => {
    request.onsuccess = () => resolve(request.result);
    request.onerror = () => reject(request.error);
  });
}

function committed(tx: IdbTransaction): Promise<void> {
  return new Promise((resolve, reject) => {
    tx.oncomplete = () => resolve();
    tx.onerror = () => reject(tx.error);
    tx.onabort = () => reject(tx.error ?? new Error('transaction aborted'));
  });
}

export class IndexedDbStorage implements QueueStorage {
  private db: Promise<IdbDatabase> | null = null;
  private nextPosition = 1;
  private readonly positions = new Map<string, number>();

  constructor(private readonly options: IndexedDbStorageOptions = {}) {}

  async load(): Promise<QueuedMutation[]> {
    const db = await this.open();
    const rows = (await requestResult(
      db.transaction(STORE, 'readonly').objectStore(STORE).getAll(),
    )) as StoredEntry[];
    rows.sort((a, b) => a.position - b.position);
    for (const row of rows) {
      this.positions.set(row.mid, row.position);
      this.nextPosition = Math.max(this.nextPosition, row.position + 1);
    }
    return rows.map(({ mid, mutation, queuedAt }) => ({ mid, mutation, queuedAt }));
  }

  async append(entries: QueuedMutation[]): Promise<void> {
    const db = await this.open();
    // 'strict': committed means flushed to disk. Chromium's default ('relaxed' since 121) reports a
    // commit before the OS has the data, and a power cut could then lose a write the app saw queued.
    const tx = db.transaction(STORE, 'readwrite', { durability: 'strict' });
    const done = committed(tx);
    const store = tx.objectStore(STORE);
    for (const entry of entries) {
      const position = this.nextPosition++;
      this.positions.set(entry.mid, position);
      store.put({ ...entry, position } satisfies StoredEntry);
    }
    await this.wrap(done, 'write');
  }

  async remove(mids: string[]): Promise<void> {
    const db = await this.open();
    const tx = db.transaction(STORE, 'readwrite');
    const done = committed(tx);
    const store = tx.objectStore(STORE);
    for (const mid of mids) {
      const position = this.positions.get(mid);
      if (position === undefined) continue;
      this.positions.delete(mid);
      store.delete(position);
    }
    await this.wrap(done, 'write');
  }

  async close(): Promise<void> {
    if (this.db) (await this.db.catch(() => null))?.close();
    this.db = null;
  }

  private open(): Promise<IdbDatabase> {
    this.db ??= (async () => {
      const factory = this.options.indexedDB ?? (globalThis as { indexedDB?: IdbFactory }).indexedDB;
      if (!factory) {
        throw new SyncClientError(
          'STORAGE',
          'IndexedDB is not available here; in Node use FileStorage (or MemoryStorage)',
        );
      }
      const request = factory.open(this.options.name ?? 'syncbridge-queue', 1);
      request.onupgradeneeded = () => {
        const db = request.result;
        if (!db.objectStoreNames.contains(STORE)) db.createObjectStore(STORE, { keyPath: 'position' });
      };
      return this.wrap(requestResult(request), 'open');
    })();
    return this.db;
  }

  private async wrap<T>(promise: Promise<T>, what: string): Promise<T> {
    try {
      return await promise;
    } catch (err) {
      if (err instanceof SyncClientError) throw err;
      throw new SyncClientError(
        'STORAGE',
        `IndexedDB ${what} failed: ${String((err as Error)?.message ?? err)}`,
      );
    }
  }
}
