/**
 * The replica: keeps the server state of the records of every subscribed channel, and each channel's
 * cursor, in the storage, so that the next run shows the last data at once and resumes every channel
 * from where it was (backlog only, no snapshot).
 *
 * Changes are gathered and written together (debounced, and at once on `persisted()`/`close()`). A write
 * is captured in one synchronous step from the caches and the subscriptions, so a cursor is stored only
 * with the records it covers; a records channel's cursor never passes a server update still held back
 * in the cache (waiting for a write's result), so a restart cannot skip it. Records no channel covers
 * are not kept. Over `maxBytes`, the least recently used channels that are not subscribed now are
 * evicted with the records only they covered; the offline queue is never touched. It must never store
 * anything before its scope (tenant + user) is known, nor load another scope's data.
 */
import { parseChannel } from '@syncbridge/protocol';
import type { ServerEntry } from './cache.ts';
import { SyncClientError } from './errors.ts';
import { matchesFilter, type RecordFilter } from './filters.ts';
import { recordKey } from './storage/replica-table.ts';
import type {
  ClientStorage,
  ReplicaState,
  ReplicaWrite,
  StoredChannel,
  StoredRecord,
} from './storage/types.ts';
import type { ResumePoint } from './subscriptions.ts';

export interface LocalReplicaOptions {
  storage: ClientStorage;
  /** The tenant + user the replica belongs to; null: unknown, so the replica stays off. */
  scope: Promise<string | null>;
  maxBytes: number;
  serverEntry: (collection: string, id: string) => ServerEntry | undefined;
  /** The channels subscribed now, with their last seq (a records channel's capped below held updates). */
  resumePoints: () => ResumePoint[];
  onError: (error: SyncClientError) => void;
  /** Debounce of replica writes. Default 50 ms. */
  flushDelayMs?: number;
  /**
   * True while the caches hold only part of what was loaded (a first page shown, the rest not restored
   * yet): nothing is written meanwhile, since a record missing from the caches would look forgotten.
   */
  holdWrites?: () => boolean;
  /** Load a first page of each collection first, when the storage can (`replicaFirstPage`). */
  firstPage?: number;
}

interface ChannelScope {
  collection: string;
  filter: RecordFilter;
}

function recordsScope(channel: string): ChannelScope | null {
  const spec = parseChannel(channel);
  return 'kind' in spec && spec.kind === 'records'
    ? { collection: spec.collection, filter: spec.filter }
    : null;
}

/** About the size of a value's JSON, without building it (this runs for every record loaded). */
function approxBytes(value: unknown): number {
  if (typeof value === 'string') return value.length + 2;
  if (typeof value !== 'object' || value === null) return 8;
  let bytes = 2;
  if (Array.isArray(value)) for (const v of value) bytes += approxBytes(v) + 1;
  else
    for (const key in value) bytes += key.length + 4 + approxBytes((value as Record<string, unknown>)[key]);
  return bytes;
}

function recordBytes(record: StoredRecord): number {
  return record.collection.length + record.id.length + 48 + approxBytes(record.data);
}

export class LocalReplica {
  private scope: string | null = null;
  private loadedState: Promise<ReplicaState | null> | null = null;
  private readonly channels = new Map<string, StoredChannel>();
  private readonly scopes = new Map<string, ChannelScope | null>();
  /** Bytes of each stored record, by collection then id. */
  private readonly stored = new Map<string, Map<string, number>>();
  private totalBytes = 0;
  /** Records loaded but not yet counted in `stored`/`totalBytes` (see `load`). */
  private untracked: StoredRecord[] | null = null;
  /** Reads the records a first-page load left out (see `loadRest`). */
  private rest: (() => StoredRecord[]) | null = null;
  private readonly dirtyRecords = new Map<string, Set<string>>();
  private readonly usedNow = new Set<string>();
  private dirtyCursors = false;
  private timer: ReturnType<typeof setTimeout> | null = null;
  private writes: Promise<void> = Promise.resolve();
  private closed = false;

  constructor(private readonly options: LocalReplicaOptions) {}

  /**
   * Loads the replica of the scope (null when the scope is unknown). Called once. With `firstPage` and
   * a storage that can, the records are each collection's first page; `loadRest()` reads the others.
   */
  load(): Promise<ReplicaState | null> {
    this.loadedState ??= this.options.scope.then(async (scope) => {
      if (scope === null) return null;
      const { storage, firstPage } = this.options;
      let state: ReplicaState;
      if (firstPage !== undefined && storage.loadReplicaFirstPage) {
        const loaded = await storage.loadReplicaFirstPage(scope, firstPage);
        state = loaded.state;
        this.rest = loaded.rest;
      } else state = await storage.loadReplica(scope);
      this.scope = scope;
      for (const channel of state.channels) this.channels.set(channel.channel, channel);
      // Sizes are counted at the first write, not here: nothing needs them before, and counting
      // 100,000 records would delay the first render.
      this.untracked = state.records;
      return state;
    });
    return this.loadedState;
  }

  /** The records a first-page load left out, read now (once; [] when there are none). */
  loadRest(): StoredRecord[] {
    const rest = this.rest;
    this.rest = null;
    if (!rest) return [];
    const records = rest();
    this.untracked = this.untracked ? this.untracked.concat(records) : records;
    return records;
  }

  /** The cursor a channel was stored with, or null. */
  storedCursor(channel: string): number | null {
    return this.channels.get(channel)?.cursor ?? null;
  }

  /** The server state of a record changed. */
  recordChanged(collection: string, id: string): void {
    let ids = this.dirtyRecords.get(collection);
    if (!ids) {
      ids = new Set();
      this.dirtyRecords.set(collection, ids);
    }
    ids.add(id);
    // A held update released moves a records channel's stored cursor too.
    this.dirtyCursors = true;
    this.schedule();
  }

  /** A channel's cursor moved. */
  cursorChanged(): void {
    this.dirtyCursors = true;
    this.schedule();
  }

  /** A channel was subscribed: it is the most recently used now. */
  channelUsed(channel: string): void {
    this.usedNow.add(channel);
    this.schedule();
  }

  /** A channel is being unsubscribed: what it has received is captured now, while its cursor is known. */
  channelReleased(): void {
    this.flush();
  }

  /** Resolves once everything changed so far is in the storage. */
  async persisted(): Promise<void> {
    this.flush();
    await this.writes;
  }

  /** Writes what is left (captured now, synchronously) and stops. */
  close(): Promise<void> {
    this.flush();
    this.closed = true;
    return this.writes;
  }

  private schedule(): void {
    if (this.timer || this.closed) return;
    this.timer = setTimeout(() => {
      this.timer = null;
      this.flush();
    }, this.options.flushDelayMs ?? 50);
  }

  private flush(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    if (this.options.holdWrites?.()) {
      this.schedule();
      return;
    }
    const scope = this.scope;
    if (this.closed || scope === null) return;
    const write = this.capture();
    if (!write) return;
    this.writes = this.writes.then(() =>
      this.options.storage.writeReplica(scope, write).catch((err: unknown) => {
        this.options.onError(
          err instanceof SyncClientError
            ? err
            : new SyncClientError('STORAGE', `cannot write the replica: ${String(err)}`),
        );
      }),
    );
  }

  /** Everything changed since the last write, as one write; null when nothing did. */
  private capture(): ReplicaWrite | null {
    this.trackLoaded();
    const now = Date.now();
    const write: ReplicaWrite = { records: [], forget: [], channels: [], dropChannels: [] };
    const active = new Set<string>();
    if (this.dirtyCursors || this.usedNow.size > 0 || this.dirtyRecords.size > 0) {
      for (const point of this.options.resumePoints()) {
        active.add(point.channel);
        const known = this.channels.get(point.channel);
        if (known?.cursor === point.lastSeq && !this.usedNow.has(point.channel)) continue;
        const channel: StoredChannel = { channel: point.channel, cursor: point.lastSeq, usedAt: now };
        this.channels.set(point.channel, channel);
        write.channels.push(channel);
      }
      this.dirtyCursors = false;
      this.usedNow.clear();
    } else {
      for (const point of this.options.resumePoints()) active.add(point.channel);
    }
    for (const [collection, ids] of this.dirtyRecords) {
      for (const id of ids) {
        const entry = this.options.serverEntry(collection, id);
        if (entry && this.covered(collection, entry.data)) {
          const record: StoredRecord = {
            collection,
            id,
            data: entry.data,
            version: entry.version,
            seq: entry.seq,
          };
          this.track(record);
          write.records.push(record);
        } else if (this.untrack(collection, id)) write.forget.push([collection, id]);
      }
    }
    this.dirtyRecords.clear();
    this.evict(write, active);
    const empty =
      write.records.length === 0 &&
      write.forget.length === 0 &&
      write.channels.length === 0 &&
      write.dropChannels.length === 0;
    return empty ? null : write;
  }

  /** Drops the least recently used channels not subscribed now, until the replica fits `maxBytes`. */
  private evict(write: ReplicaWrite, active: Set<string>): void {
    if (this.totalBytes <= this.options.maxBytes) return;
    const candidates = [...this.channels.values()]
      .filter((c) => !active.has(c.channel))
      .sort((a, b) => a.usedAt - b.usedAt);
    for (const victim of candidates) {
      if (this.totalBytes <= this.options.maxBytes) break;
      this.channels.delete(victim.channel);
      write.channels = write.channels.filter((c) => c.channel !== victim.channel);
      write.dropChannels.push(victim.channel);
      const scope = this.channelScope(victim.channel);
      if (!scope) continue;
      const kept = new Set(write.records.map((r) => recordKey(r.collection, r.id)));
      for (const id of [...(this.stored.get(scope.collection)?.keys() ?? [])]) {
        const entry = this.options.serverEntry(scope.collection, id);
        if (entry && this.covered(scope.collection, entry.data)) continue;
        this.untrack(scope.collection, id);
        if (kept.has(recordKey(scope.collection, id))) {
          write.records = write.records.filter((r) => r.collection !== scope.collection || r.id !== id);
        }
        write.forget.push([scope.collection, id]);
      }
    }
  }

  /** True when a stored channel's collection and filter take a record with this data. */
  private covered(collection: string, data: Record<string, unknown> | null): boolean {
    for (const channel of this.channels.keys()) {
      const scope = this.channelScope(channel);
      if (scope?.collection !== collection) continue;
      if (data === null || matchesFilter(data, scope.filter)) return true;
    }
    return false;
  }

  private channelScope(channel: string): ChannelScope | null {
    let scope = this.scopes.get(channel);
    if (scope === undefined) {
      scope = recordsScope(channel);
      this.scopes.set(channel, scope);
    }
    return scope;
  }

  private trackLoaded(): void {
    const records = this.untracked;
    if (!records) return;
    this.untracked = null;
    for (const record of records) this.track(record);
  }

  private track(record: StoredRecord): void {
    this.untrack(record.collection, record.id);
    let ids = this.stored.get(record.collection);
    if (!ids) {
      ids = new Map();
      this.stored.set(record.collection, ids);
    }
    const bytes = recordBytes(record);
    ids.set(record.id, bytes);
    this.totalBytes += bytes;
  }

  private untrack(collection: string, id: string): boolean {
    const ids = this.stored.get(collection);
    const bytes = ids?.get(id);
    if (bytes === undefined) return false;
    ids!.delete(id);
    this.totalBytes -= bytes;
    return true;
  }
}
