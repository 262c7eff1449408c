/**
 * The local record cache of one collection. It keeps what the server last said about each record
 * apart from the local mutations still waiting for their result, and shows the application the server
 * state with those pending mutations re-applied (see `rebase.ts`). When a result or another client's
 * change arrives, the view is recomputed; a rejected mutation simply drops out (a rollback).
 *
 * A server update for a record that has a mutation on the wire is held back until that mutation's
 * result arrives: the update may already contain the mutation, and applying both would count it twice
 * (an increment shown as +2). Server updates are applied only when newer than what the cache holds
 * (by version), so the same change arriving on two channels, or as both an event and a result, is one change.
 */
import type { EventMessage, MutationResult, SyncRecord } from '@syncbridge/protocol';
import { TypedEventEmitter } from './emitter.ts';
import { matchesFilter, type RecordFilter } from './filters.ts';
import { type JsonObject, type PendingOp, rebase } from './rebase.ts';

/** A record as the application sees it: server state with pending local changes applied. */
export interface CachedRecord<T = JsonObject> {
  id: string;
  data: T;
  /** The server version this view is based on (null: the server has not confirmed this record yet). */
  version: number | null;
  /** True while local changes to this record wait for the server's answer. */
  pending: boolean;
}

/**
 * What moved a record: a local write, another client's change, a snapshot, a result, a rejected write,
 * or the storage (the replica and the queued writes of an earlier run, loaded at start).
 */
export type ChangeSource = 'local' | 'remote' | 'snapshot' | 'result' | 'rollback' | 'storage';

export interface RecordChange<T = JsonObject> {
  id: string;
  before: CachedRecord<T> | undefined;
  after: CachedRecord<T> | undefined;
}

export interface CollectionChange<T = JsonObject> {
  source: ChangeSource;
  changes: RecordChange<T>[];
}

/** What the server last said about a record (`data: null`: deleted at `version`). */
export interface ServerEntry {
  data: JsonObject | null;
  version: number;
  seq: number;
}

type ServerUpdate =
  | { kind: 'set'; id: string; data: JsonObject | null; version: number; seq: number; force: boolean }
  | { kind: 'forget'; id: string };

export class CollectionCache {
  readonly events = new TypedEventEmitter<{ change: CollectionChange }>();
  private readonly server = new Map<string, ServerEntry>();
  private readonly pending = new Map<string, PendingOp[]>();
  private readonly view = new Map<string, CachedRecord>();
  private readonly held = new Map<string, ServerUpdate[]>();
  private readonly idOfMid = new Map<string, string>();

  /** `onServerChange` hears of every change of the server state (what the replica stores), not of the view. */
  constructor(
    readonly name: string,
    private readonly onServerChange?: (id: string) => void,
  ) {}

  /** What the server last said about a record, as far as applied (updates held back are not). */
  serverEntry(id: string): ServerEntry | undefined {
    return this.server.get(id);
  }

  /** The lowest seq of a server update held back (waiting for a write's result), or null. */
  heldMinSeq(): number | null {
    let min: number | null = null;
    for (const list of this.held.values()) {
      for (const update of list)
        if (update.kind === 'set' && (min === null || update.seq < min)) min = update.seq;
    }
    return min;
  }

  /**
   * Loads what an earlier run left: the replica's server state and the queued writes, shown as one
   * `storage` change. Writes made since the client started stay after the restored ones.
   */
  restore(records: Array<{ id: string } & ServerEntry>, ops: PendingOp[]): void {
    const changes: RecordChange[] = [];
    const opIds = new Set<string>();
    for (const op of ops) opIds.add(op.id);
    if (this.server.size === 0 && this.view.size === 0 && this.pending.size === 0 && opIds.size === 0) {
      // The usual start (an empty cache, no queued writes): each record is shown as the server had it,
      // without the four lookups per record below (this runs for 100,000 records before the first render).
      for (const record of records) {
        const known = this.server.get(record.id);
        if (known && known.version >= record.version) continue;
        this.server.set(record.id, record);
        if (record.data === null) {
          if (known) changes.push(this.recompute(record.id));
          continue;
        }
        const after: CachedRecord = {
          id: record.id,
          data: record.data,
          version: record.version,
          pending: false,
        };
        const before = known ? this.view.get(record.id) : undefined;
        this.view.set(record.id, after);
        changes.push({ id: record.id, before, after });
      }
      // Every change here is a new view object: no filtering pass before emitting.
      if (changes.length > 0) this.events.emit('change', { source: 'storage', changes });
      return;
    }
    for (const record of records) {
      const id = record.id;
      const known = this.server.get(id);
      if (known && known.version >= record.version) continue;
      // The stored record is a ServerEntry already (extra fields aside): no copy of 100,000 objects.
      this.server.set(id, record);
      if (opIds.has(id)) continue; // shown below, with its restored writes
      if (!known && !this.pending.has(id) && record.data !== null && !this.view.has(id)) {
        // The usual case at start (nothing known, nothing pending): the view is the server state.
        const after: CachedRecord = { id, data: record.data, version: record.version, pending: false };
        this.view.set(id, after);
        changes.push({ id, before: undefined, after });
      } else changes.push(this.recompute(id));
    }
    for (let i = ops.length - 1; i >= 0; i--) {
      const op = ops[i]!;
      this.idOfMid.set(op.mid, op.id);
      this.pending.set(op.id, [op, ...(this.pending.get(op.id) ?? [])]);
    }
    for (const id of opIds) changes.push(this.recompute(id));
    this.emit('storage', changes);
  }

  get(id: string): CachedRecord | undefined {
    return this.view.get(id);
  }

  list(filter?: RecordFilter): CachedRecord[] {
    const out: CachedRecord[] = [];
    let sorted = true;
    for (const record of this.view.values()) {
      if (!matchesFilter(record.data, filter)) continue;
      if (sorted && out.length > 0 && out[out.length - 1]!.id > record.id) sorted = false;
      out.push(record);
    }
    // Records restored or snapshotted in id order are listed in that order already: no sort of 100,000.
    return sorted ? out : out.sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
  }

  /** The server version a new write to `id` is based on: known, and no other local write in between. */
  baseVersion(id: string): number | undefined {
    if (this.pending.get(id)?.length) return undefined;
    const entry = this.server.get(id);
    return entry && entry.data !== null ? entry.version : undefined;
  }

  /** Shows a new local write at once. */
  addPending(op: PendingOp): void {
    this.idOfMid.set(op.mid, op.id);
    const list = this.pending.get(op.id) ?? [];
    list.push(op);
    this.pending.set(op.id, list);
    this.emit('local', [this.recompute(op.id)]);
  }

  markSent(mid: string): void {
    const id = this.idOfMid.get(mid);
    const op = id === undefined ? undefined : this.pending.get(id)?.find((o) => o.mid === mid);
    if (op) op.sent = true;
  }

  /** Settles a write with the server's result (or drops it, without a result, when it could not be queued). */
  settle(mid: string, result: MutationResult | null): void {
    const id = this.idOfMid.get(mid);
    if (id === undefined) return;
    this.idOfMid.delete(mid);
    const remaining = (this.pending.get(id) ?? []).filter((o) => o.mid !== mid);
    if (remaining.length > 0) this.pending.set(id, remaining);
    else this.pending.delete(id);
    const record = result?.record;
    if (record) {
      this.applyNow({
        kind: 'set',
        id,
        data: record.deleted ? null : record.data,
        version: record.version,
        seq: result.seq ?? 0,
        force: false,
      });
    }
    if (!remaining.some((o) => o.sent)) this.releaseHeld(id);
    const status = result?.status === 'duplicate' ? (result.originalStatus ?? 'applied') : result?.status;
    const source: ChangeSource = status === 'applied' || status === 'merged' ? 'result' : 'rollback';
    this.emit(source, [this.recompute(id)]);
  }

  applyEvent(event: EventMessage): void {
    if (event.kind !== 'record' || event.collection !== this.name || event.id === undefined) return;
    const update: ServerUpdate = {
      kind: 'set',
      id: event.id,
      data: event.op === 'delete' ? null : (event.data ?? null),
      version: event.version ?? 0,
      seq: event.seq,
      force: false,
    };
    if (this.hold(update)) return;
    this.applyNow(update);
    this.emit('remote', [this.recompute(event.id)]);
  }

  /** Takes a record the server returned outside any channel (a conflict's resolution): newer versions only. */
  applyRecord(record: SyncRecord, seq: number): void {
    if (record.collection !== this.name) return;
    const update: ServerUpdate = {
      kind: 'set',
      id: record.id,
      data: record.deleted ? null : record.data,
      version: record.version,
      seq,
      force: false,
    };
    if (this.hold(update)) return;
    this.applyNow(update);
    this.emit('remote', [this.recompute(record.id)]);
  }

  /**
   * Applies a complete snapshot of a channel (the whole collection, or the records matching `filter`).
   * Records in scope that the snapshot lacks are forgotten when the cache has nothing newer than the
   * snapshot's cursor; an authoritative snapshot (after a reset) replaces whatever the cache held.
   */
  applySnapshot(
    records: SyncRecord[],
    info: { cursor: number; authoritative: boolean; filter?: RecordFilter },
  ): void {
    const present = new Set<string>();
    const changed: RecordChange[] = [];
    const apply = (update: ServerUpdate) => {
      if (this.hold(update)) return;
      this.applyNow(update);
      changed.push(this.recompute(update.id));
    };
    for (const record of records) {
      present.add(record.id);
      apply({
        kind: 'set',
        id: record.id,
        data: record.deleted ? null : record.data,
        version: record.version,
        seq: info.cursor,
        force: info.authoritative,
      });
    }
    for (const [id, entry] of [...this.server]) {
      if (present.has(id) || entry.data === null || !matchesFilter(entry.data, info.filter)) continue;
      if (info.authoritative || entry.seq <= info.cursor) apply({ kind: 'forget', id });
    }
    this.emit('snapshot', changed);
  }

  private hold(update: ServerUpdate): boolean {
    if (!this.pending.get(update.id)?.some((o) => o.sent)) return false;
    const list = this.held.get(update.id) ?? [];
    list.push(update);
    this.held.set(update.id, list);
    return true;
  }

  private releaseHeld(id: string): void {
    const list = this.held.get(id);
    if (!list) return;
    this.held.delete(id);
    for (const update of list) this.applyNow(update);
  }

  private applyNow(update: ServerUpdate): void {
    if (update.kind === 'forget') {
      if (this.server.delete(update.id)) this.onServerChange?.(update.id);
      return;
    }
    const entry = this.server.get(update.id);
    if (entry && !update.force && update.version <= entry.version) return;
    this.server.set(update.id, { data: update.data, version: update.version, seq: update.seq });
    this.onServerChange?.(update.id);
  }

  private recompute(id: string): RecordChange {
    const before = this.view.get(id);
    const entry = this.server.get(id);
    const ops = this.pending.get(id) ?? [];
    const data = rebase(entry?.data ?? null, ops);
    let after: CachedRecord | undefined;
    if (data === null) this.view.delete(id);
    else {
      after = {
        id,
        data,
        version: entry && entry.data !== null ? entry.version : null,
        pending: ops.length > 0,
      };
      if (before && sameRecord(before, after)) after = before;
      this.view.set(id, after);
    }
    return { id, before, after };
  }

  private emit(source: ChangeSource, changes: RecordChange[]): void {
    const real = changes.filter((c) => c.before !== c.after);
    if (real.length > 0) this.events.emit('change', { source, changes: real });
  }
}

function sameRecord(a: CachedRecord, b: CachedRecord): boolean {
  return a.version === b.version && a.pending === b.pending && sameJson(a.data, b.data);
}

/** Deep equality of JSON values; key order does not matter (PostgreSQL's jsonb does not keep it). */
function sameJson(a: unknown, b: unknown): boolean {
  if (a === b) return true;
  if (typeof a !== 'object' || typeof b !== 'object' || a === null || b === null) return false;
  if (Array.isArray(a) !== Array.isArray(b)) return false;
  const keysA = Object.keys(a);
  if (keysA.length !== Object.keys(b).length) return false;
  return keysA.every(
    (k) =>
      Object.hasOwn(b, k) && sameJson((a as Record<string, unknown>)[k], (b as Record<string, unknown>)[k]),
  );
}
