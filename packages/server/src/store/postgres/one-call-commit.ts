/**
 * One tenant's commit in one round trip on PostgreSQL. The log writer's work for a tenant (TenantWriter)
 * runs first against what this node remembers of the tenant: its head and settings versions, and the
 * records it read or wrote lately. Everything that work wrote, with what it assumed (the head, the
 * versions, each record's version, the idempotency keys it took for new), goes to `syncbridge_commit`
 * (migration 14) in one call: under the tenant's head row lock the function checks the assumptions
 * and writes records, log entries, results, conflicts and outbox rows, or writes nothing and says
 * 'moved'. Then, and whenever the remembered state is missing, the work runs again in an ordinary
 * transaction (BEGIN, lock, reads, write, COMMIT), whose outcome refreshes what is remembered.
 * SQLite uses the same seam (`CallCommit`): its commit thread makes the same checks and writes
 * (store/sqlite/commit-ops.ts, commit-thread.ts).
 *
 * It must never: commit a seq or a record version without the function's check under the head row lock
 * (memory is a guess, the check is the truth), let the first run's outcome escape when it did not
 * commit (the caller's work has no effect but its result, so running it twice is safe), or remember
 * anything from a transaction that did not commit.
 */
import type { MutationResult, SyncRecord } from '@syncbridge/protocol';
import { storedResultValue } from '../rows.ts';
import type { CommitPipeline, RecordKey, TenantBatch, TenantLock, VersionKey, WriteTx } from '../types.ts';
import { recordKey } from '../types.ts';

/** Reads outside any transaction (records and record versions: checked or immutable). */
export interface CommitReads {
  getRecords(tenant: string, keys: RecordKey[]): Promise<Map<string, SyncRecord>>;
  getVersionData(tenant: string, keys: VersionKey[]): Promise<Map<string, Record<string, unknown>>>;
}

/**
 * One tenant's computed commit, with what it assumed: the driver checks the assumptions under the
 * tenant's write lock and writes `batch`, or writes nothing and answers 'moved'.
 */
export interface OneCall {
  tenant: string;
  /** The head seq, webhook and collection settings versions assumed (the tenant's head row must exist). */
  lock: TenantLock;
  /** The head seq after this commit. */
  next: number;
  /** The last event of the commit still in flight this one was computed on: it must be the head. */
  last: string | null;
  /** Idempotency keys taken for new: none may be stored. */
  absent: string[];
  /** Each record's assumed version (0: no record). */
  expect: { collection: string; id: string; version: number }[];
  batch: TenantBatch;
}

export type CallCommit = (commit: OneCall) => Promise<'committed' | 'moved'>;
export type InTransaction = <T>(fn: (tx: WriteTx) => Promise<T>) => Promise<T>;

/** The first run needs something only a locked transaction can give (a stored conflict). */
class NeedsTransaction extends Error {}

const MAX_TENANTS = 10_000;
const MAX_RECORDS = 20_000;
/** After another writer moved a tenant under this node, commit it in transactions for this long. */
const CONTENDED_MS = 1000;

/** A Map that forgets its least recently set entries past `max`. */
function setBounded<K, V>(map: Map<K, V>, key: K, value: V, max: number): void {
  map.delete(key);
  map.set(key, value);
  if (map.size > max) map.delete(map.keys().next().value as K);
}

/**
 * What this node takes a tenant's state to be: confirmed (`last` null: read under the lock or
 * committed by this node with nothing in flight) or built on a commit still in flight whose last event
 * is `last`.
 */
interface Known {
  lock: TenantLock;
  last: string | null;
}

/** The state a first run assumed, and what it wrote. */
interface Attempt {
  lock: TenantLock;
  /** Record key -> the version assumed (0: no record). */
  expected: Map<string, { collection: string; id: string; version: number }>;
  absent: Set<string>;
  batch: TenantBatch | null;
}

export class OneCallCommits {
  private readonly heads = new Map<string, Known>();
  /** `tenant\0collection\0id` -> the record as last committed by this node or read under a lock; null: none. */
  private readonly records = new Map<string, SyncRecord | null>();
  private readonly contendedUntil = new Map<string, number>();

  constructor(
    private readonly reads: CommitReads,
    private readonly call: CallCommit,
  ) {}

  /**
   * Commits fn's writes for one tenant: in one call when the remembered state holds, else in
   * `transaction`. With `pipeline`, `prepared` is called as soon as the one call is on its way, so the
   * tenant's next commit may be computed on top of this one (it names this one's last event, which the
   * function finds at the head only if this one committed); a commit that falls back to a transaction
   * first waits for `after`, the settling of the tenant's previous commit, so seqs settle in order.
   */
  async commit<T>(
    tenant: string,
    fn: (tx: WriteTx) => Promise<T>,
    transaction: InTransaction,
    pipeline?: CommitPipeline,
  ): Promise<T> {
    const known = this.heads.get(tenant);
    const contended = (this.contendedUntil.get(tenant) ?? 0) > Date.now();
    if (known && !contended) {
      const attempt: Attempt = { lock: known.lock, expected: new Map(), absent: new Set(), batch: null };
      let result: T | undefined;
      let ran = false;
      try {
        result = await fn(this.firstRunTx(tenant, attempt));
        ran = true;
      } catch (err) {
        if (!(err instanceof NeedsTransaction)) throw err;
      }
      const batch = attempt.batch;
      if (ran && batch && this.heads.get(tenant) === known) {
        const last = batch.events.at(-1)?.eventId ?? null;
        const call = this.callOrDecline({
          tenant,
          lock: attempt.lock,
          next: batch.head,
          last: known.last,
          absent: [...attempt.absent],
          expect: [...attempt.expected.values()],
          batch,
        });
        // Remembered before it is known to commit, so the next commit can build on it; undone below.
        const mine: Known = { lock: { ...attempt.lock, head: batch.head }, last: last ?? known.last };
        this.remember(tenant, mine, batch.records);
        if (last) pipeline?.prepared();
        const outcome = await call.catch((err: unknown) => {
          this.undo(tenant, batch.records);
          throw err;
        });
        if (outcome === 'committed') return result as T;
        this.undo(tenant, batch.records);
        // Moved by another writer (not by a failed commit of this node it was built on): contended.
        if (outcome === 'moved' && known.last === null) {
          setBounded(this.contendedUntil, tenant, Date.now() + CONTENDED_MS, MAX_TENANTS);
        }
      }
    }
    await pipeline?.after;
    return this.inTransaction(tenant, fn, transaction);
  }

  /**
   * A value the function's JSON refuses (text jsonb cannot hold, such as a lone surrogate, which the
   * driver's text encoding replaces) declines the one call: the transaction stores what it always did.
   */
  private async callOrDecline(commit: OneCall): Promise<'committed' | 'moved' | 'declined'> {
    try {
      return await this.call(commit);
    } catch (err) {
      const code = (err as { code?: unknown }).code;
      if (typeof code === 'string' && code.startsWith('22')) return 'declined';
      throw err;
    }
  }

  /** Hears a transaction's tenant writes through `observe`, and remembers them once it committed. */
  private async inTransaction<T>(
    tenant: string,
    fn: (tx: WriteTx) => Promise<T>,
    transaction: InTransaction,
  ): Promise<T> {
    this.forget(tenant);
    let lock: TenantLock | null = null;
    let head: number | null = null;
    const read: SyncRecord[] = [];
    const absent: string[] = [];
    let written: SyncRecord[] = [];
    const result = await transaction((tx) =>
      fn({
        ...tx,
        lockTenant: async (t) => {
          const got = await tx.lockTenant(t);
          if (t === tenant) lock = got;
          return got;
        },
        getRecords: async (t, keys) => {
          const found = await tx.getRecords(t, keys);
          if (t === tenant) {
            for (const k of keys) {
              const record = found.get(recordKey(k.collection, k.id));
              if (record) read.push(record);
              else absent.push(recordKey(k.collection, k.id));
            }
          }
          return found;
        },
        writeBatch: async (t, batch) => {
          await tx.writeBatch(t, batch);
          if (t === tenant) {
            head = batch.head;
            written = batch.records;
          }
        },
      }),
    );
    const locked = lock as TenantLock | null;
    if (locked) {
      for (const key of absent) setBounded(this.records, `${tenant}\u0000${key}`, null, MAX_RECORDS);
      this.remember(tenant, { lock: { ...locked, head: head ?? locked.head }, last: null }, [
        ...read,
        ...written,
      ]);
    }
    return result;
  }

  private remember(tenant: string, known: Known, records: SyncRecord[]): void {
    setBounded(this.heads, tenant, known, MAX_TENANTS);
    for (const r of records) setBounded(this.records, cacheKey(tenant, r.collection, r.id), r, MAX_RECORDS);
  }

  /**
   * A commit that did not commit: its head and records are forgotten (a record version it assumed
   * could later be written with other data, so it must not stay remembered).
   */
  private undo(tenant: string, records: SyncRecord[]): void {
    this.forget(tenant);
    for (const r of records) this.records.delete(cacheKey(tenant, r.collection, r.id));
  }

  /**
   * Committed records may stay: the function checks each version, a committed version's data never
   * changes, and a transaction re-reads what it touches.
   */
  private forget(tenant: string): void {
    this.heads.delete(tenant);
  }

  /** A WriteTx answering from memory (and unlocked reads), collecting what the commit must check. */
  private firstRunTx(tenant: string, attempt: Attempt): WriteTx {
    const only = (t: string) => {
      if (t !== tenant) throw new Error(`a commit of tenant ${tenant} touched tenant ${t}`);
    };
    return {
      lockTenant: async (t) => {
        only(t);
        return attempt.lock;
      },
      getResults: async (t, keys) => {
        only(t);
        // Taken for new; the function refuses the commit if any of them is stored.
        for (const key of keys) attempt.absent.add(key);
        return new Map<string, MutationResult>();
      },
      getRecords: async (t, keys) => {
        only(t);
        const found = new Map<string, SyncRecord>();
        const missing: RecordKey[] = [];
        for (const k of keys) {
          const key = cacheKey(tenant, k.collection, k.id);
          if (!this.records.has(key)) {
            missing.push(k);
            continue;
          }
          const record = this.records.get(key);
          if (record) found.set(recordKey(k.collection, k.id), record);
        }
        if (missing.length > 0) {
          for (const [key, record] of await this.reads.getRecords(tenant, missing)) found.set(key, record);
        }
        for (const k of keys) {
          const record = found.get(recordKey(k.collection, k.id));
          attempt.expected.set(recordKey(k.collection, k.id), {
            collection: k.collection,
            id: k.id,
            version: record?.version ?? 0,
          });
        }
        return found;
      },
      // A record's data at a version never changes once committed: no check needed.
      getVersionData: (t, keys) => {
        only(t);
        return this.reads.getVersionData(tenant, keys);
      },
      getConflict: async () => {
        throw new NeedsTransaction('a conflict is read under the lock');
      },
      writeBatch: async (t, batch) => {
        only(t);
        if (attempt.batch) throw new NeedsTransaction('one batch per commit');
        attempt.batch = batch;
      },
    };
  }
}

function cacheKey(tenant: string, collection: string, id: string): string {
  return `${tenant}\u0000${recordKey(collection, id)}`;
}

/** The argument of `syncbridge_commit`: one JSON document, its field names those of the function. */
export function commitPayload(commit: OneCall): string {
  const { tenant, batch } = commit;
  const last = new Map<string, SyncRecord>();
  for (const r of batch.records) {
    const key = recordKey(r.collection, r.id);
    last.delete(key);
    last.set(key, r);
  }
  return JSON.stringify({
    tenant,
    head: commit.lock.head,
    hooks: commit.lock.hooksVersion,
    collections: commit.lock.collectionsVersion,
    next: commit.next,
    last: commit.last,
    absent: commit.absent,
    expect: commit.expect,
    records: [...last.values()].map((r) => ({
      collection: r.collection,
      id: r.id,
      data: r.data,
      version: r.version,
      hlc: r.hlc,
      updated_at: r.updatedAt,
      updated_by: r.updatedBy,
      deleted: r.deleted,
    })),
    // JSON null would arrive as SQL NULL; a payload may be null, so it travels wrapped ([payload]).
    events: batch.events.map((e) => ({
      seq: e.seq,
      event_id: e.eventId,
      kind: e.kind,
      collection: e.collection,
      record_id: e.id,
      op: e.op,
      version: e.version,
      data: e.data,
      type: e.type,
      payload: e.payload === undefined ? undefined : [e.payload],
      source: e.source,
      target: e.target,
      priority: e.priority,
      hlc: e.hlc,
      actor: e.actor,
      ts: e.ts,
      device: e.device,
      previous: e.previous,
    })),
    results: batch.results.map((r) => ({ key: r.key, result: storedResultValue(r.result) })),
    conflicts: batch.conflicts ?? [],
    deliveries: (batch.deliveries ?? []).map((d) => ({
      id: d.id,
      webhook_id: d.webhookId,
      event_id: d.eventId,
      seq: d.seq,
      event_type: d.eventType,
      platform: d.platform,
      priority: d.priority,
      body: d.body,
      created_at: d.createdAt,
      attempts: d.lease ? 1 : 0,
      locked_until: d.lease?.until ?? null,
      locked_by: d.lease?.node ?? null,
    })),
  });
}
