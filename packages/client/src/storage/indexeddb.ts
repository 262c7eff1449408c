/**
 * Queue and replica storage in IndexedDB (browsers). The queue is one object store keyed by an
 * increasing position, which keeps its order; each append or removal is one transaction, resolved when
 * it has committed (durability 'strict'). The replica is two more stores, `records` (keyed by collection
 * and id) and `channels` (cursor and last use), and a `meta` row naming the scope and schema version they
 * hold; one replica write is one transaction over both, so a cursor is never stored without its records.
 * Database version 2 adds the replica stores to a version 1 (queue only) database and keeps its queue.
 * Importing this module anywhere is safe: IndexedDB is looked up only when the storage is first used,
 * and its absence (Node) is reported then as a STORAGE error.
 *
 * @example
 * const client = new SyncClient({ url, token, storage: new IndexedDbStorage({ name: 'todo-app' }) });
 */
import { SyncClientError } from '../errors.ts';
import { recordKey } from './replica-table.ts';
import {
  type ClientStorage,
  type QueuedMutation,
  REPLICA_SCHEMA_VERSION,
  type ReplicaState,
  type ReplicaWrite,
  type StoredChannel,
  type StoredRecord,
} from './types.ts';

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
  get(key: string): IdbRequest<unknown>;
  put(value: unknown): IdbRequest<unknown>;
  delete(key: number | string): IdbRequest<unknown>;
  clear(): IdbRequest<unknown>;
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
    store: string | string[],
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
const RECORDS = 'records';
const CHANNELS = 'channels';
const META = 'meta';
const DB_VERSION = 2;

interface StoredRecordRow extends StoredRecord {
  key: string;
}
interface ReplicaMeta {
  key: 'replica';
  scope: string;
  schema: number;
}

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

export class IndexedDbStorage implements ClientStorage {
  private db: Promise<IdbDatabase> | null = null;
  private nextPosition = 1;
  private readonly positions = new Map<string, number>();
  private replicaScope: string | null = null;

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
    return rows.map(({ position: _position, ...entry }) => entry);
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

  async loadReplica(scope: string): Promise<ReplicaState> {
    const db = await this.open();
    const meta = (await this.wrap(
      requestResult(db.transaction(META, 'readonly').objectStore(META).get('replica')),
      'read',
    )) as ReplicaMeta | undefined;
    if (meta?.scope !== scope || meta.schema !== REPLICA_SCHEMA_VERSION) {
      // Another user's or tenant's replica, or an older schema: wipe it before anything is read.
      const tx = db.transaction([META, RECORDS, CHANNELS], 'readwrite');
      const done = committed(tx);
      tx.objectStore(RECORDS).clear();
      tx.objectStore(CHANNELS).clear();
      tx.objectStore(META).put({
        key: 'replica',
        scope,
        schema: REPLICA_SCHEMA_VERSION,
      } satisfies ReplicaMeta);
      await this.wrap(done, 'write');
      this.replicaScope = scope;
      return { records: [], channels: [] };
    }
    this.replicaScope = scope;
    const tx = db.transaction([RECORDS, CHANNELS], 'readonly');
    const [rows, channels] = await this.wrap(
      Promise.all([
        requestResult(tx.objectStore(RECORDS).getAll()),
        requestResult(tx.objectStore(CHANNELS).getAll()),
      ]),
      'read',
    );
    const records = (rows as StoredRecordRow[]).map(({ collection, id, data, version, seq }) => ({
      collection,
      id,
      data,
      version,
      seq,
    }));
    return { records, channels: channels as StoredChannel[] };
  }

  async writeReplica(scope: string, write: ReplicaWrite): Promise<void> {
    if (this.replicaScope !== scope) return;
    const db = await this.open();
    const tx = db.transaction([RECORDS, CHANNELS], 'readwrite');
    const done = committed(tx);
    const records = tx.objectStore(RECORDS);
    for (const record of write.records) {
      records.put({ ...record, key: recordKey(record.collection, record.id) } satisfies StoredRecordRow);
    }
    for (const [collection, id] of write.forget) records.delete(recordKey(collection, id));
    const channels = tx.objectStore(CHANNELS);
    for (const channel of write.channels) channels.put(channel);
    for (const channel of write.dropChannels) channels.delete(channel);
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
      const request = factory.open(this.options.name ?? 'syncbridge-queue', DB_VERSION);
      request.onupgradeneeded = () => {
        // Version 1 had the queue only; each step creates what is missing and keeps what is there.
        const db = request.result;
        if (!db.objectStoreNames.contains(STORE)) db.createObjectStore(STORE, { keyPath: 'position' });
        if (!db.objectStoreNames.contains(RECORDS)) db.createObjectStore(RECORDS, { keyPath: 'key' });
        if (!db.objectStoreNames.contains(CHANNELS)) db.createObjectStore(CHANNELS, { keyPath: 'channel' });
        if (!db.objectStoreNames.contains(META)) db.createObjectStore(META, { keyPath: 'key' });
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
