/**
 * Queue and replica storage in IndexedDB (browsers). The queue is one object store keyed by an
 * increasing position, which keeps its order; each append or removal is one transaction, resolved when
 * it has committed (durability 'strict'). The replica is two more stores, `record_buckets` and `channels`
 * (cursor and last use), and a `meta` row naming the scope and schema version they hold; one replica
 * write is one transaction over both, so a cursor is never stored without its records.
 *
 * Records are kept in buckets, not one row each: a record's bucket is a hash of its id (BUCKETS per
 * collection), so 100,000 records are a few hundred rows, read by one `getAll` that deserializes a few
 * hundred values instead of 100,000. A bucket holds its records as one JSON string: the browser then
 * copies a string out of the database instead of rebuilding every record object by structured clone,
 * and JSON.parse builds them faster. A write reads and rewrites only the buckets it touches, inside its
 * transaction, so nothing is held in memory between writes. Why: docs/decisions.md.
 *
 * Database version 2 added the replica stores to a version 1 (queue only) database and kept its queue;
 * version 3 moved version 2's one-row-per-record `records` store into buckets, and version 4 turns each
 * bucket's array of records into its JSON text, in the upgrade itself.
 *
 * Another tab: a tab still open on an older version blocks this one's upgrade until it closes; that is
 * reported (an error with `details.reason: 'blocked'`, through `onError`) and the open goes on once it
 * can. When a newer version of the app upgrades the database from another tab, this storage closes its
 * connection at once (so that upgrade is not blocked) and reports it (`details.reason: 'versionchange'`);
 * every later call fails with STORAGE until the page is reloaded with the new version.
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
  onupgradeneeded: ((event: { oldVersion: number }) => void) | null;
  /** Another connection holds an older version open: the upgrade waits until it closes. */
  onblocked: ((event: { oldVersion: number }) => void) | null;
  /** The upgrade's transaction, while `onupgradeneeded` runs. */
  transaction: IdbTransaction | null;
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
  deleteObjectStore(name: string): void;
  transaction(
    store: string | string[],
    mode: 'readonly' | 'readwrite',
    options?: { durability?: 'default' | 'strict' | 'relaxed' },
  ): IdbTransaction;
  close(): void;
  /** Another connection wants to upgrade (or delete) the database. */
  onversionchange: ((event: { oldVersion: number; newVersion: number | null }) => void) | null;
}
export interface IdbFactory {
  open(name: string, version?: number): IdbOpenRequest;
}

interface StoredEntry extends QueuedMutation {
  position: number;
}

const STORE = 'mutations';
/** Version 2's store, one row per record; version 3 moves it into BUCKETS. */
const RECORDS_V2 = 'records';
const BUCKETS = 'record_buckets';
const CHANNELS = 'channels';
const META = 'meta';
const DB_VERSION = 4;
/** Buckets per collection: 100,000 records make about 200 a bucket, and a write rewrites one or a few. */
const BUCKET_COUNT = 512;

interface StoredRecordRowV2 extends StoredRecord {
  key: string;
}
/** A record in a bucket: `[id, version, seq, data]`. */
type BucketEntry = [string, number, number, Record<string, unknown> | null];
/** A bucket: its records as the JSON text of a `BucketEntry[]` (version 3 kept the array itself, `records`). */
interface BucketRow {
  key: string;
  collection: string;
  text: string;
}
interface BucketRowV3 {
  key: string;
  collection: string;
  records: BucketEntry[];
}

function bucketRow(key: string, collection: string, entries: Iterable<BucketEntry>): BucketRow {
  return { key, collection, text: JSON.stringify([...entries]) };
}

/** The bucket of a record: FNV-1a of its id, so the same id always lands in the same row. */
function bucketKey(collection: string, id: string): string {
  let hash = 0x811c9dc5;
  for (let i = 0; i < id.length; i++) {
    hash ^= id.charCodeAt(i);
    hash = Math.imul(hash, 0x01000193);
  }
  return recordKey(collection, String((hash >>> 0) % BUCKET_COUNT));
}

/** Changes to one bucket: records to put, ids to forget. */
interface BucketChange {
  collection: string;
  put: Map<string, BucketEntry>;
  forget: Set<string>;
}

function changeOf(changes: Map<string, BucketChange>, collection: string, id: string): BucketChange {
  const key = bucketKey(collection, id);
  let change = changes.get(key);
  if (!change) {
    change = { collection, put: new Map(), forget: new Set() };
    changes.set(key, change);
  }
  return change;
}

/** Applies `change` to a bucket's row inside the transaction: rewrites it, or deletes it once empty. */
function rewriteBucket(store: IdbObjectStore, key: string, change: BucketChange): void {
  const request = store.get(key);
  request.onsuccess = () => {
    const row = request.result as BucketRow | undefined;
    const entries = new Map<string, BucketEntry>();
    for (const entry of row ? (JSON.parse(row.text) as BucketEntry[]) : []) entries.set(entry[0], entry);
    for (const id of change.forget) entries.delete(id);
    for (const [id, entry] of change.put) entries.set(id, entry);
    if (entries.size === 0) store.delete(key);
    else store.put(bucketRow(key, change.collection, entries.values()));
  };
  // An error aborts the transaction, and `committed` rejects with it.
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
  /**
   * Hears of what another tab does to the database: blocked by an older version still open, or closed
   * because a newer version upgraded it. A SyncClient also reports these as its `error` event.
   */
  onError?: (error: SyncClientError) => void;
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

/**
 * Version 2 to 3, inside the upgrade's transaction: every record row goes into its bucket, then the old
 * store is dropped. The channels stay: their records are all still there. A failure aborts the upgrade,
 * and the database stays at version 2, untouched.
 */
function moveRecordsIntoBuckets(db: IdbDatabase, tx: IdbTransaction): void {
  const rows = tx.objectStore(RECORDS_V2).getAll();
  rows.onsuccess = () => {
    const changes = new Map<string, BucketChange>();
    for (const { collection, id, version, seq, data } of rows.result as StoredRecordRowV2[]) {
      changeOf(changes, collection, id).put.set(id, [id, version, seq, data]);
    }
    const buckets = tx.objectStore(BUCKETS);
    for (const [key, change] of changes) buckets.put(bucketRow(key, change.collection, change.put.values()));
    db.deleteObjectStore(RECORDS_V2);
  };
}

/** Version 3 to 4, inside the upgrade's transaction: each bucket's array of records becomes its JSON text. */
function bucketsToText(tx: IdbTransaction): void {
  const buckets = tx.objectStore(BUCKETS);
  const rows = buckets.getAll();
  rows.onsuccess = () => {
    for (const row of rows.result as Array<BucketRow | BucketRowV3>) {
      if ('records' in row) buckets.put(bucketRow(row.key, row.collection, row.records));
    }
  };
}

export class IndexedDbStorage implements ClientStorage {
  private db: Promise<IdbDatabase> | null = null;
  private nextPosition = 1;
  private readonly positions = new Map<string, number>();
  private replicaScope: string | null = null;
  /** Set once another tab's newer version took the database over: every call fails with it. */
  private superseded: SyncClientError | null = null;
  private readonly errorListeners = new Set<(error: SyncClientError) => void>();

  constructor(private readonly options: IndexedDbStorageOptions = {}) {
    if (options.onError) this.errorListeners.add(options.onError);
  }

  /** Adds a listener for errors that no call returns (another tab blocking or superseding this one). */
  reportErrorsTo(listener: (error: SyncClientError) => void): () => void {
    this.errorListeners.add(listener);
    return () => this.errorListeners.delete(listener);
  }

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
      const tx = db.transaction([META, BUCKETS, CHANNELS], 'readwrite');
      const done = committed(tx);
      tx.objectStore(BUCKETS).clear();
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
    const tx = db.transaction([BUCKETS, CHANNELS], 'readonly');
    const [rows, channels] = await this.wrap(
      Promise.all([
        requestResult(tx.objectStore(BUCKETS).getAll()),
        requestResult(tx.objectStore(CHANNELS).getAll()),
      ]),
      'read',
    );
    const records: StoredRecord[] = [];
    for (const { collection, text } of rows as BucketRow[]) {
      for (const [id, version, seq, data] of JSON.parse(text) as BucketEntry[])
        records.push({ collection, id, version, seq, data });
    }
    return { records, channels: channels as StoredChannel[] };
  }

  async writeReplica(scope: string, write: ReplicaWrite): Promise<void> {
    if (this.replicaScope !== scope) return;
    const db = await this.open();
    const tx = db.transaction([BUCKETS, CHANNELS], 'readwrite');
    const done = committed(tx);
    const changes = new Map<string, BucketChange>();
    for (const [collection, id] of write.forget) changeOf(changes, collection, id).forget.add(id);
    for (const { collection, id, version, seq, data } of write.records) {
      const change = changeOf(changes, collection, id);
      change.forget.delete(id);
      change.put.set(id, [id, version, seq, data]);
    }
    const buckets = tx.objectStore(BUCKETS);
    for (const [key, change] of changes) rewriteBucket(buckets, key, change);
    const channels = tx.objectStore(CHANNELS);
    for (const channel of write.channels) channels.put(channel);
    for (const channel of write.dropChannels) channels.delete(channel);
    await this.wrap(done, 'write');
  }

  async close(): Promise<void> {
    if (this.db) (await this.db.catch(() => null))?.close();
    this.db = null;
  }

  private report(error: SyncClientError): void {
    for (const listener of this.errorListeners) listener(error);
  }

  private open(): Promise<IdbDatabase> {
    if (this.superseded) return Promise.reject(this.superseded);
    this.db ??= (async () => {
      const factory = this.options.indexedDB ?? (globalThis as { indexedDB?: IdbFactory }).indexedDB;
      if (!factory) {
        throw new SyncClientError(
          'STORAGE',
          'IndexedDB is not available here; in Node use FileStorage (or MemoryStorage)',
        );
      }
      const name = this.options.name ?? 'syncbridge-queue';
      const request = factory.open(name, DB_VERSION);
      request.onblocked = (event) => {
        this.report(
          new SyncClientError(
            'STORAGE',
            `IndexedDB "${name}" is held open at version ${event.oldVersion} by another tab: the storage opens once that tab is closed or reloaded`,
            { reason: 'blocked', oldVersion: event.oldVersion, version: DB_VERSION },
          ),
        );
      };
      request.onupgradeneeded = (event) => {
        // Version 1 had the queue only, version 2 one row per record, version 3 buckets of arrays;
        // each step creates what is missing and keeps what is there.
        const db = request.result;
        if (!db.objectStoreNames.contains(STORE)) db.createObjectStore(STORE, { keyPath: 'position' });
        if (!db.objectStoreNames.contains(BUCKETS)) db.createObjectStore(BUCKETS, { keyPath: 'key' });
        if (!db.objectStoreNames.contains(CHANNELS)) db.createObjectStore(CHANNELS, { keyPath: 'channel' });
        if (!db.objectStoreNames.contains(META)) db.createObjectStore(META, { keyPath: 'key' });
        if (db.objectStoreNames.contains(RECORDS_V2) && request.transaction) {
          moveRecordsIntoBuckets(db, request.transaction);
        } else if (event.oldVersion === 3 && request.transaction) bucketsToText(request.transaction);
      };
      const db = await this.wrap(requestResult(request), 'open');
      db.onversionchange = (event) => {
        // Closing at once lets the other tab's upgrade go on; this tab's code is the older one now.
        db.close();
        this.db = null;
        this.superseded = new SyncClientError(
          'STORAGE',
          `IndexedDB "${name}" was ${event.newVersion === null ? 'deleted' : `upgraded to version ${event.newVersion}`} by another tab: reload this page`,
          { reason: 'versionchange', version: DB_VERSION, newVersion: event.newVersion },
        );
        this.report(this.superseded);
      };
      return db;
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
