/**
 * The sealed-fields backfill: when a collection's `sealedFields` gains a field, what was stored before
 * stays plaintext until this pass re-encrypts it, and a rotated secrets key leaves values sealed under
 * the previous key until this pass re-seals them under the newest. One pass over one collection (its
 * branches `c@b` included) walks, in bounded batches: its records, its log entries (history, `previous`),
 * its stored conflicts and its branches' fork points, then the tenant's remembered mutation results and webhook delivery bodies (those
 * of the collection's events are sealed; any sealed under an older key id is re-sealed), and last the
 * tenant's webhook signing secrets (re-sealed when an older key sealed them).
 *
 * Each batch's rewrites and the pass's progress (stage, last key, counts) are written in one transaction
 * (SealedBackfillStore.writeRows), so a pass stopped anywhere (a crash, a stop) resumes after the last
 * batch written. A row is rewritten only if it still holds what was read: a write that raced the pass
 * was already sealed by the live policy, and is left as it is. Running a pass again is harmless.
 *
 * Compact history: a compacted log entry holds no `data` but a delta against its record's next entry (or
 * a keyframe), plaintext of the new sealed fields included. The events stage rebuilds each compacted
 * entry of the collection (in seq order, so before any entry after it, which its delta may be against, is
 * rewritten) and writes it back full and sealed; its batch lowers the tenant's compaction watermark so
 * the compaction job compacts those entries again later, in their sealed form. The compaction job does
 * nothing for a tenant while any of its passes is unfinished (store/sqlite/history.ts,
 * store/postgres/history.ts): a pass's first write
 * (records stage, before any events row is read) marks it unfinished, and on PostgreSQL every pass write
 * takes the tenant's watermark row lock the compaction batch holds, so a batch that began before that
 * write has committed before the events stage reads, and any later batch sees the pass and stops. No
 * entry is compacted between its rebuild and its seal, nor against an entry not yet sealed.
 *
 * The last three stages read every row of the tenant whatever the collection. A backfill of many
 * collections (sealed-backfill-tenant.ts) walks each collection's own stages (COLLECTION_STAGES) in a
 * pass of its own and the tenant's (TENANT_STAGES) once, in a pass stored under the collection `*` that
 * seals each collection's fields (`collections`).
 */
import { SecretBox } from './secret-box.ts';

/** The collection of a ref: `c` of a branch `c@b` (as core/branches.ts reads it). */
const mainCollection = (ref: string): string => {
  const at = ref.indexOf('@');
  return at < 0 ? ref : ref.slice(0, at);
};

/** What one pass walks, in order. */
export type BackfillStage =
  | 'records'
  | 'events'
  | 'conflicts'
  | 'branches'
  | 'results'
  | 'deliveries'
  | 'webhooks';
export const COLLECTION_STAGES: readonly BackfillStage[] = ['records', 'events', 'conflicts', 'branches'];
export const TENANT_STAGES: readonly BackfillStage[] = ['results', 'deliveries', 'webhooks'];
export const BACKFILL_STAGES: readonly BackfillStage[] = [...COLLECTION_STAGES, ...TENANT_STAGES];
/** The collection name of a tenant-wide pass (never a collection's: names are `[A-Za-z0-9_.-]`). */
export const TENANT_WIDE = '*';

/**
 * One stored row as read: its key (opaque to the pass, ordered by the store) and the stored text of the
 * stage's columns: records [data], events [data, previous], conflicts [doc], branches [fork_data],
 * results [result],
 * deliveries [body], webhooks [secrets] (JSON texts, or null).
 */
export interface BackfillRow {
  key: string;
  values: (string | null)[];
  /**
   * An events row stored compacted (compact history): `values[0]` is its data as rebuilt. It is written
   * back full (and sealed) even when sealing changes nothing, since a later entry its delta is against may
   * be rewritten by this pass.
   */
  packed?: boolean;
}

/** A row to rewrite: `from` is what was read (the row is left alone if it changed since), `to` the new text. */
export interface BackfillChange {
  key: string;
  from: (string | null)[];
  to: (string | null)[];
  /** The row is compacted: written back full (`packed` cleared). */
  unpack?: boolean;
}

/** Where a pass is, as stored after each batch. */
export interface BackfillProgress {
  tenant: string;
  collection: string;
  /** The sealed fields the pass seals (as the settings said when it started). */
  fields: string[];
  /** The id of the key it seals under. */
  keyId: string;
  stage: BackfillStage;
  /** The stages it walks, when not all (in BACKFILL_STAGES order). */
  stages?: BackfillStage[];
  /** A tenant-wide pass (`*`): the sealed fields of each collection whose rows it seals. */
  collections?: Record<string, string[]>;
  /** The key of the last row of `stage` done (null: the stage starts from its first row). */
  after: string | null;
  scanned: number;
  rewritten: number;
  done: boolean;
  startedAt: string;
  updatedAt: string;
}

/** The store side (store/sqlite/sealed-backfill.ts, store/postgres/sealed-backfill.ts). */
export interface SealedBackfillStore {
  readProgress(tenant: string, collection: string): Promise<BackfillProgress | null>;
  /** Passes that have not finished (a server resumes them when it starts). */
  listUnfinished(): Promise<BackfillProgress[]>;
  /** Up to `limit` rows of `stage` after `after`, in key order. */
  readRows(
    stage: BackfillStage,
    tenant: string,
    collection: string,
    after: string | null,
    limit: number,
  ): Promise<BackfillRow[]>;
  /**
   * Rewrites the rows still as read and saves `progress` (its `rewritten` plus the rows rewritten now),
   * in one transaction; returns the rows rewritten.
   */
  writeRows(
    stage: BackfillStage,
    tenant: string,
    changes: BackfillChange[],
    progress: BackfillProgress,
  ): Promise<number>;
}

type Data = Record<string, unknown>;

const isObject = (v: unknown): v is Data => typeof v === 'object' && v !== null && !Array.isArray(v);

/** Seals the listed fields of data objects and re-seals values sealed under an older key. */
export class Resealer {
  constructor(
    private readonly box: SecretBox,
    private readonly fields: readonly string[],
  ) {}

  /** A sealed string's plain JSON text if this server's keys open it, else null (a plain string). */
  private opened(value: string): string | null {
    if (!SecretBox.isSealed(value)) return null;
    try {
      return this.box.open(value);
    } catch {
      return null;
    }
  }

  /** The object with its fields sealed under the newest key, or null when nothing changes. */
  data(data: Data): Data | null {
    let out: Data | null = null;
    for (const field of Object.keys(data)) {
      const value = data[field];
      let next: string | undefined;
      const plain = typeof value === 'string' ? this.opened(value) : null;
      if (plain !== null) {
        if (SecretBox.keyIdOf(value as string) !== this.box.sealingKeyId) next = this.box.seal(plain);
      } else if (this.fields.includes(field) && value !== undefined) {
        next = this.box.seal(JSON.stringify(value));
      }
      if (next === undefined) continue;
      out ??= { ...data };
      out[field] = next;
    }
    return out;
  }

  /** A JSON text of a data object (or null), resealed; undefined when unchanged. */
  dataText(text: string | null): string | null | undefined {
    if (text === null) return undefined;
    const parsed: unknown = JSON.parse(text);
    if (!isObject(parsed)) return undefined;
    const next = this.data(parsed);
    return next ? JSON.stringify(next) : undefined;
  }

  /** A stored conflict's document: its base, server and client versions. */
  conflictText(text: string | null): string | null | undefined {
    if (text === null) return undefined;
    const doc: unknown = JSON.parse(text);
    if (!isObject(doc)) return undefined;
    let changed = false;
    const out: Data = { ...doc };
    for (const side of ['base', 'server', 'client']) {
      const value = doc[side];
      const next = isObject(value) ? this.data(value) : null;
      if (next) {
        out[side] = next;
        changed = true;
      }
    }
    return changed ? JSON.stringify(out) : undefined;
  }

  /** A remembered mutation result: its record's data, when the record is of `collection`. */
  resultText(text: string | null, collection: string): string | null | undefined {
    if (text === null) return undefined;
    const result: unknown = JSON.parse(text);
    if (!isObject(result) || !isObject(result.record) || !isObject(result.record.data)) return undefined;
    const ofCollection =
      typeof result.record.collection === 'string' && mainCollection(result.record.collection) === collection;
    const next = ofCollection ? this.data(result.record.data) : this.rotateOnly(result.record.data);
    return next ? JSON.stringify({ ...result, record: { ...result.record, data: next } }) : undefined;
  }

  /** A webhook delivery's body: sealed whole when its event is of `collection`; re-sealed when older. */
  bodyText(text: string | null, collection: string): string | null | undefined {
    if (text === null) return undefined;
    const plain = this.opened(text);
    if (plain !== null)
      return SecretBox.keyIdOf(text) === this.box.sealingKeyId ? undefined : this.box.seal(plain);
    if (this.fields.length === 0) return undefined;
    let body: unknown;
    try {
      body = JSON.parse(text);
    } catch {
      return undefined;
    }
    if (!isObject(body) || !isObject(body.data) || typeof body.data.collection !== 'string') return undefined;
    return mainCollection(body.data.collection) === collection ? this.box.seal(text) : undefined;
  }

  /**
   * A webhook's stored signing secrets (one sealed JSON string): sealed when stored before a key was set,
   * re-sealed when an older key sealed them.
   */
  secretsText(text: string | null): string | null | undefined {
    if (text === null) return undefined;
    const value: unknown = JSON.parse(text);
    if (Array.isArray(value)) return JSON.stringify(this.box.seal(JSON.stringify(value)));
    if (typeof value !== 'string' || SecretBox.keyIdOf(value) === this.box.sealingKeyId) return undefined;
    const plain = this.opened(value);
    return plain === null ? undefined : JSON.stringify(this.box.seal(plain));
  }

  /** Only re-seals what an older key sealed (data of another collection). */
  private rotateOnly(data: Data): Data | null {
    return new Resealer(this.box, []).data(data);
  }

  /** The new texts of a row of `stage`, or null when it stays as it is. */
  row(stage: BackfillStage, values: (string | null)[], collection: string): (string | null)[] | null {
    return this.rowOf(stage, values, collection);
  }

  /** As `row`; a tenant-wide resealer overrides it (results and deliveries by their own collection). */
  protected rowOf(
    stage: BackfillStage,
    values: (string | null)[],
    collection: string,
  ): (string | null)[] | null {
    const next = values.map((text): string | null | undefined => {
      if (stage === 'conflicts') return this.conflictText(text);
      if (stage === 'results') return this.resultText(text, collection);
      if (stage === 'deliveries') return this.bodyText(text, collection);
      if (stage === 'webhooks') return this.secretsText(text);
      return this.dataText(text);
    });
    if (next.every((v) => v === undefined)) return null;
    return next.map((v, i) => (v === undefined ? values[i]! : v));
  }
}

export interface BackfillOptions {
  /** Rows read per batch (each batch is one short write). */
  batchSize?: number;
  /** Told after every batch. */
  onProgress?: (progress: BackfillProgress) => void;
  /** Checked between batches: a true value stops the pass where it is (it resumes later). */
  shouldStop?: () => boolean;
}

const sameFields = (a: readonly string[], b: readonly string[]) =>
  a.length === b.length && [...a].sort().every((f, i) => f === [...b].sort()[i]);

/** Seals the tenant's rows for several collections at once: each row by its own collection's fields. */
export class TenantResealer extends Resealer {
  private readonly byCollection = new Map<string, Resealer>();

  constructor(box: SecretBox, collections: Readonly<Record<string, readonly string[]>>) {
    super(box, []);
    for (const [name, fields] of Object.entries(collections))
      this.byCollection.set(name, new Resealer(box, fields));
  }

  protected override rowOf(
    stage: BackfillStage,
    values: (string | null)[],
    _collection: string,
  ): (string | null)[] | null {
    if (stage !== 'results' && stage !== 'deliveries') return super.rowOf(stage, values, TENANT_WIDE);
    const text = values[0] ?? null;
    const collection = text === null ? null : collectionOfRow(stage, text);
    const resealer = (collection !== null && this.byCollection.get(collection)) || this;
    const next =
      stage === 'results'
        ? resealer.resultText(text, collection ?? '')
        : resealer.bodyText(text, collection ?? '');
    return next === undefined ? null : [next];
  }
}

/** The collection (`c` of `c@b`) a remembered result's record or a delivery's event is of, if any. */
function collectionOfRow(stage: 'results' | 'deliveries', text: string): string | null {
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    return null; // a sealed delivery body, or not JSON
  }
  if (!isObject(parsed)) return null;
  const holder = stage === 'results' ? parsed.record : parsed.data;
  return isObject(holder) && typeof holder.collection === 'string' ? mainCollection(holder.collection) : null;
}

const sameCollections = (
  a: Readonly<Record<string, readonly string[]>> | undefined,
  b: Readonly<Record<string, readonly string[]>> | undefined,
) =>
  Object.keys(a ?? {}).length === Object.keys(b ?? {}).length &&
  Object.entries(a ?? {}).every(([name, fields]) => b?.[name] !== undefined && sameFields(fields, b[name]));

/** One pass: a collection's (its fields), or the tenant-wide one (`*`, with `collections`). */
export interface BackfillJob {
  tenant: string;
  collection: string;
  fields: readonly string[];
  /** The stages to walk, in BACKFILL_STAGES order (default all). */
  stages?: readonly BackfillStage[];
  /** The tenant-wide pass: each collection's sealed fields. */
  collections?: Readonly<Record<string, readonly string[]>>;
}

/**
 * Runs (or resumes) the pass over `collection` of `tenant` sealing `fields` under the box's newest key.
 * An unfinished pass with the same fields and key resumes where it stopped; any other starts afresh.
 */
export async function runSealedBackfill(
  store: SealedBackfillStore,
  box: SecretBox,
  job: BackfillJob,
  options: BackfillOptions = {},
): Promise<BackfillProgress> {
  const batchSize = Math.max(1, Math.min(10_000, options.batchSize ?? 500));
  const fields = [...job.fields];
  const stages = job.stages ?? BACKFILL_STAGES;
  const now = () => new Date().toISOString();
  const prior = await store.readProgress(job.tenant, job.collection);
  const resumes =
    prior &&
    !prior.done &&
    prior.keyId === box.sealingKeyId &&
    sameFields(prior.fields, fields) &&
    sameFields(prior.stages ?? BACKFILL_STAGES, stages) &&
    sameCollections(prior.collections, job.collections);
  const progress: BackfillProgress = resumes
    ? { ...prior }
    : {
        tenant: job.tenant,
        collection: job.collection,
        fields,
        keyId: box.sealingKeyId,
        stage: stages[0]!,
        ...(job.stages ? { stages: [...job.stages] } : {}),
        ...(job.collections
          ? { collections: Object.fromEntries(Object.entries(job.collections).map(([c, f]) => [c, [...f]])) }
          : {}),
        after: null,
        scanned: 0,
        rewritten: 0,
        done: false,
        startedAt: now(),
        updatedAt: now(),
      };
  const resealer = job.collections ? new TenantResealer(box, job.collections) : new Resealer(box, fields);
  while (!progress.done) {
    if (options.shouldStop?.()) return progress;
    const stage = progress.stage;
    const rows = await store.readRows(stage, job.tenant, job.collection, progress.after, batchSize);
    const changes: BackfillChange[] = [];
    for (const row of rows) {
      const to = resealer.row(stage, row.values, job.collection);
      if (row.packed) changes.push({ key: row.key, from: row.values, to: to ?? row.values, unpack: true });
      else if (to) changes.push({ key: row.key, from: row.values, to });
    }
    progress.scanned += rows.length;
    if (rows.length < batchSize) {
      const next = stages[stages.indexOf(stage) + 1];
      if (next) {
        progress.stage = next;
        progress.after = null;
      } else progress.done = true;
    } else progress.after = rows[rows.length - 1]!.key;
    progress.updatedAt = now();
    progress.rewritten += await store.writeRows(stage, job.tenant, changes, progress);
    options.onProgress?.({ ...progress });
    // Other work (commits, reads) runs between batches.
    await new Promise((resolve) => setImmediate(resolve));
  }
  return progress;
}
