/**
 * Sealed fields: the top-level data fields a collection names in `sealedFields` are kept encrypted at
 * rest, in records, log entries (history), stored conflicts, remembered results, webhook deliveries and
 * branches' fork points (so also in every backup of the database), while every reader of the Store sees
 * them in plain.
 *
 * `withSealedFields` wraps a Store: its writes seal the named fields (each value becomes the string
 * `sbx1.<key id>.<iv>.<ciphertext>.<tag>` of SecretBox, AES-256-GCM under SYNCBRIDGE_SECRETS_KEY), its
 * reads open every top-level string that is such a value and authenticates under a configured key. So a
 * field stays readable after it leaves `sealedFields`, a rotated key opens what the previous one sealed,
 * and a plain string that merely looks sealed is given back as it was written. Which fields to seal is
 * asked of `policy` at write time (the collection settings, current under the tenant's write lock).
 */
import type { Conflict, LogEvent, MutationResult, SyncRecord } from '@syncbridge/protocol';
import type { BranchRow, BranchStore } from './branch-types.ts';
import type { HistoryStore } from './history/types.ts';
import { SecretBox } from './secret-box.ts';
import type { Store, TenantBatch, WriteTx } from './types.ts';

/** The fields to seal in a collection's records (none: undefined or empty). */
export type SealPolicy = (tenant: string, collection: string) => readonly string[] | undefined;

type Data = Record<string, unknown>;

/** Seals and opens the sealed fields of data objects. */
export class FieldSealer {
  constructor(private readonly box: SecretBox) {}

  seal(data: Data, fields: readonly string[]): Data {
    let out: Data | null = null;
    for (const field of fields) {
      if (!Object.hasOwn(data, field) || data[field] === undefined) continue;
      out ??= { ...data };
      out[field] = this.box.seal(JSON.stringify(data[field]));
    }
    return out ?? data;
  }

  open(data: Data): Data {
    let out: Data | null = null;
    for (const field in data) {
      const value = data[field];
      if (typeof value !== 'string' || !SecretBox.isSealed(value)) continue;
      let plain: unknown;
      try {
        plain = JSON.parse(this.box.open(value));
      } catch {
        // Not sealed by this server (a plain string of that shape, or a key no longer configured).
        continue;
      }
      out ??= { ...data };
      out[field] = plain;
    }
    return out ?? data;
  }

  /** The same value for the same object: a record's data and its log entry's data stay one object. */
  sealOnce(fields: readonly string[]): (data: Data) => Data {
    const seen = new Map<Data, Data>();
    return (data) => {
      let sealed = seen.get(data);
      if (!sealed) {
        sealed = this.seal(data, fields);
        seen.set(data, sealed);
      }
      return sealed;
    };
  }

  /** A whole text sealed (a webhook delivery's body); `openBody` gives it back. */
  sealBody(body: string): string {
    return this.box.seal(body);
  }

  openRecord(r: SyncRecord): SyncRecord {
    const data = this.open(r.data);
    return data === r.data ? r : { ...r, data };
  }

  openEvent(e: LogEvent): LogEvent {
    if (e.kind !== 'record') return e;
    const data = e.data ? this.open(e.data) : e.data;
    const previous = e.previous ? this.open(e.previous) : e.previous;
    if (data === e.data && previous === e.previous) return e;
    const out = { ...e, data };
    if (previous !== undefined) out.previous = previous;
    return out;
  }

  openConflict(c: Conflict): Conflict {
    return {
      ...c,
      base: c.base && this.open(c.base),
      server: this.open(c.server),
      client: c.client && this.open(c.client),
    };
  }

  openResult(r: MutationResult): MutationResult {
    return r.record ? { ...r, record: this.openRecord(r.record) } : r;
  }
}

/** The batch as it is to be stored: every sealed field of its collections sealed. */
function sealBatch(sealer: FieldSealer, tenant: string, batch: TenantBatch, policy: SealPolicy): TenantBatch {
  const byCollection = new Map<string, ((data: Data) => Data) | null>();
  const sealerOf = (collection: string | undefined) => {
    if (collection === undefined) return null;
    let fn = byCollection.get(collection);
    if (fn === undefined) {
      const fields = policy(tenant, collection);
      fn = fields && fields.length > 0 ? sealer.sealOnce(fields) : null;
      byCollection.set(collection, fn);
    }
    return fn;
  };
  const sealedEvents = new Set<string>();
  const events = batch.events.map((e) => {
    const seal = e.kind === 'record' ? sealerOf(e.collection) : null;
    if (!seal) return e;
    sealedEvents.add(e.eventId);
    const out: LogEvent = { ...e, data: e.data ? seal(e.data) : e.data };
    if (e.previous) out.previous = seal(e.previous);
    return out;
  });
  const records = batch.records.map((r) => {
    const seal = sealerOf(r.collection);
    return seal ? { ...r, data: seal(r.data) } : r;
  });
  const conflicts = batch.conflicts?.map((c) => {
    const seal = sealerOf(c.collection);
    return seal
      ? { ...c, base: c.base && seal(c.base), server: seal(c.server), client: c.client && seal(c.client) }
      : c;
  });
  const results = batch.results.map((entry) => {
    const record = entry.result.record;
    const seal = record ? sealerOf(record.collection) : null;
    if (!record || !seal) return entry;
    return { key: entry.key, result: { ...entry.result, record: { ...record, data: seal(record.data) } } };
  });
  // A delivery's body carries its event: sealed whole when the event's collection seals fields.
  const deliveries = batch.deliveries?.map((d) =>
    sealedEvents.has(d.eventId) ? { ...d, body: sealer.sealBody(d.body) } : d,
  );
  const out: TenantBatch = { ...batch, records, events, results };
  if (conflicts) out.conflicts = conflicts;
  if (deliveries) out.deliveries = deliveries;
  return out;
}

function wrapTx(tx: WriteTx, tenantSealer: FieldSealer, policy: SealPolicy): WriteTx {
  const s = tenantSealer;
  return {
    lockTenant: (tenant) => tx.lockTenant(tenant),
    getResults: async (tenant, keys) => {
      const found = await tx.getResults(tenant, keys);
      for (const [k, r] of found) found.set(k, s.openResult(r));
      return found;
    },
    getRecords: async (tenant, keys) => {
      const found = await tx.getRecords(tenant, keys);
      for (const [k, r] of found) found.set(k, s.openRecord(r));
      return found;
    },
    getVersionData: async (tenant, keys) => {
      const found = await tx.getVersionData(tenant, keys);
      for (const [k, d] of found) found.set(k, s.open(d));
      return found;
    },
    getConflict: async (tenant, id) => {
      const c = await tx.getConflict(tenant, id);
      return c && s.openConflict(c);
    },
    writeBatch: (tenant, batch) => tx.writeBatch(tenant, sealBatch(s, tenant, batch, policy)),
  };
}

/** Branches whose fork point (the record's data when forked) is sealed as the collection's records are. */
function wrapBranches(branches: BranchStore, s: FieldSealer, policy: SealPolicy): BranchStore {
  const opened = (row: BranchRow): BranchRow => {
    const forkData = s.open(row.forkData);
    return forkData === row.forkData ? row : { ...row, forkData };
  };
  return {
    createBranch: (row) => {
      const fields = policy(row.tenant, row.collection);
      return branches.createBranch(fields?.length ? { ...row, forkData: s.seal(row.forkData, fields) } : row);
    },
    getBranch: async (tenant, collection, recordId, name) => {
      const row = await branches.getBranch(tenant, collection, recordId, name);
      return row && opened(row);
    },
    listBranches: async (tenant, collection, recordId) =>
      (await branches.listBranches(tenant, collection, recordId)).map(opened),
    markMerged: (...args) => branches.markMerged(...args),
    deleteBranch: (...args) => branches.deleteBranch(...args),
  };
}

/** Compaction as the store's own; a version read opens what it sealed. */
function wrapHistory(history: HistoryStore, s: FieldSealer): HistoryStore {
  return {
    compactBatch: (...args) => history.compactBatch(...args),
    watermark: (tenant) => history.watermark(tenant),
    readVersion: async (...args) => {
      const e = await history.readVersion(...args);
      return e && s.openEvent(e);
    },
  };
}

/** The store whose writes seal what `policy` names and whose reads open every sealed field. */
export function withSealedFields(store: Store, box: SecretBox, seal: SealPolicy): Store {
  const s = new FieldSealer(box);
  const overrides: Partial<Store> = {
    branches: wrapBranches(store.branches, s, seal),
    history: wrapHistory(store.history, s),
    transaction: (fn) => store.transaction((tx) => fn(wrapTx(tx, s, seal))),
    readEvents: async (tenant, query) => (await store.readEvents(tenant, query)).map((e) => s.openEvent(e)),
    getRecord: async (tenant, collection, id) => {
      const r = await store.getRecord(tenant, collection, id);
      return r && s.openRecord(r);
    },
    listRecords: async (tenant, collection, query) =>
      (await store.listRecords(tenant, collection, query)).map((r) => s.openRecord(r)),
    snapshot: async (tenant, collection, filter) => {
      const snap = await store.snapshot(tenant, collection, filter);
      return { ...snap, records: snap.records.map((r) => s.openRecord(r)) };
    },
    listConflicts: async (tenant, query) =>
      (await store.listConflicts(tenant, query)).map((c) => s.openConflict(c)),
    getConflict: async (tenant, id) => {
      const c = await store.getConflict(tenant, id);
      return c && s.openConflict(c);
    },
  };
  if (store.commitTenant) {
    const commit = store.commitTenant.bind(store);
    overrides.commitTenant = (tenant, fn, pipeline) =>
      commit(tenant, (tx) => fn(wrapTx(tx, s, seal)), pipeline);
  }
  // Everything else is the store's own; a method set later (read timing) wraps what this one answers.
  const own = overrides as Record<PropertyKey, unknown>;
  return new Proxy(store, {
    get(target, prop) {
      if (Object.hasOwn(own, prop)) return own[prop];
      const value = Reflect.get(target, prop, target);
      return typeof value === 'function' ? value.bind(target) : value;
    },
    set(_target, prop, value) {
      own[prop] = value;
      return true;
    },
  });
}
