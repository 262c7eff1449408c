/**
 * PostgreSQL side of compact history (store/history/packing.ts): the bounded compaction batches, and the
 * chain reads that rebuild compacted versions for event reads, version reads and logged results, on
 * the connection the caller read from (inside a transaction: that transaction's snapshot).
 *
 * A batch locks the tenant's watermark row, so nodes running the job at once compact each version once.
 * It reads its entries in one statement and writes what it packed in one more. A retention delete
 * running at the same time drops a record's oldest versions first, so it never leaves a packed delta
 * without the version it is against.
 */
import type { LogEvent } from '@syncbridge/protocol';
import { type ChainRow, type PackedRef, packEntry, resolvePacked, runOf } from '../history/packing.ts';
import type { HistoryBatch, HistoryBatchOptions, HistoryStore } from '../history/types.ts';
import { EVENT_COLUMNS, type EventRow, eventFromRow } from '../rows.ts';
import { UNFINISHED_OF_TENANT } from '../sealed-backfill-sql.ts';
import type { PostgresParts } from './accounts.ts';
import { type Queryable, query } from './pool.ts';

type Data = Record<string, unknown>;

/** The superseded entry (p) and the one before it (o) of a batch's entry. */
interface PredecessorColumns {
  p_seq: string | null;
  p_packed: boolean | null;
  p_empty: boolean | null;
  p_data: string | null;
  o_seq: string | null;
  o_run: number | null;
}

interface SuccessorRow {
  seq: string;
  collection: string;
  record_id: string;
  ts: string;
  data: string | null;
  packed: Buffer | null;
}

export function chainFetch(db: Queryable, tenant: string) {
  return (collection: string, id: string, fromSeq: number, limit: number) =>
    query<ChainRow>(
      db,
      `SELECT seq, data, packed FROM events
       WHERE tenant = $1 AND kind = 'record' AND collection = $2 AND record_id = $3 AND seq >= $4
       ORDER BY seq LIMIT $5`,
      [tenant, collection, id, fromSeq, limit],
    );
}

/** The events of these rows, the data of compacted ones (`packed` not null) rebuilt. */
export async function unpackEvents(
  db: Queryable,
  tenant: string,
  rows: (EventRow & { packed: Buffer | null })[],
): Promise<LogEvent[]> {
  const events = rows.map(eventFromRow);
  const refs: PackedRef[] = [];
  for (let i = 0; i < rows.length; i++) {
    const e = events[i];
    if (rows[i].packed) refs.push({ collection: e.collection!, id: e.id!, seq: e.seq });
  }
  if (refs.length === 0) return events;
  const found = await resolvePacked(refs, chainFetch(db, tenant));
  for (let i = 0; i < rows.length; i++) {
    if (rows[i].packed) events[i].data = found.get(events[i].seq);
  }
  return events;
}

/** The data of one compacted entry. */
export async function unpackOne(
  db: Queryable,
  tenant: string,
  collection: string,
  id: string,
  seq: number,
): Promise<Data | undefined> {
  return (await resolvePacked([{ collection, id, seq }], chainFetch(db, tenant))).get(seq);
}

/** A version read (getVersionData): its entry's seq and stored form. */
export interface VersionRow {
  collection: string;
  record_id: string;
  version: string;
  seq: string;
  data: string | null;
  packed: Buffer | null;
}

/** A log entry's data, rebuilt when it was compacted. */
export async function dataOf(
  db: Queryable,
  tenant: string,
  collection: string,
  id: string,
  row: { seq: string | number; data: string | null; packed: Buffer | null },
): Promise<Data> {
  if (!row.packed) return JSON.parse(row.data ?? '{}') as Data;
  return (await unpackOne(db, tenant, collection, id, Number(row.seq))) ?? {};
}

/** A logged record row (rows.ts LOGGED_RECORD_COLUMNS), its data rebuilt when it was compacted. */
export async function unpackRow<
  R extends {
    seq: string | number | null;
    collection: string;
    id: string;
    data: unknown;
    packed: Buffer | null;
  },
>(db: Queryable, tenant: string, row: R): Promise<R> {
  if (!row.packed || row.seq === null) return row;
  return { ...row, data: (await unpackOne(db, tenant, row.collection, row.id, Number(row.seq))) ?? {} };
}

export class PostgresHistory implements HistoryStore {
  constructor(private readonly parts: PostgresParts) {}

  async readVersion(
    tenant: string,
    collection: string,
    id: string,
    version: number,
  ): Promise<LogEvent | null> {
    // The record's entries on events_by_record, the first of the version (as a walk of the log finds it).
    const rows = await query<EventRow & { packed: Buffer | null }>(
      this.parts.pool,
      `SELECT ${EVENT_COLUMNS}, packed FROM events
       WHERE tenant = $1 AND kind = 'record' AND collection = $2 AND record_id = $3 AND version = $4
       ORDER BY seq LIMIT 1`,
      [tenant, collection, id, version],
    );
    return rows.length ? (await unpackEvents(this.parts.pool, tenant, rows))[0]! : null;
  }

  async watermark(tenant: string): Promise<number> {
    const rows = await query<{ seq: string }>(
      this.parts.pool,
      'SELECT seq FROM history_compaction WHERE tenant = $1',
      [tenant],
    );
    return rows.length ? Number(rows[0].seq) : 0;
  }

  /**
   * Walks the log after the watermark: each record entry compacts the entry it superseded (the record's
   * previous one), as a delta against itself, so every superseded version is compacted once, oldest first.
   */
  compactBatch(tenant: string, { limit, before }: HistoryBatchOptions): Promise<HistoryBatch> {
    return this.parts.inTransaction('BEGIN', async (client) => {
      await query(
        client,
        'INSERT INTO history_compaction (tenant, seq) VALUES ($1, 0) ON CONFLICT (tenant) DO NOTHING',
        [tenant],
      );
      const head = await query<{ seq: string }>(
        client,
        'SELECT seq FROM history_compaction WHERE tenant = $1 FOR UPDATE',
        [tenant],
      );
      const start = Number(head[0].seq);
      // A sealed-fields backfill of the tenant is unfinished: nothing is compacted until it is done
      // (its writes take this row's lock: store/sealed-backfill.ts).
      const pass = await query(client, UNFINISHED_OF_TENANT('postgres'), [tenant]);
      if (pass.length > 0) {
        return { scanned: 0, packed: 0, bytesBefore: 0, bytesAfter: 0, watermark: start, done: true };
      }
      let watermark = start;
      // Each record entry after the watermark, with the entry it superseded (p) and the one before that
      // (o: only its run position): one round trip per batch. p's data is read only when p is not itself
      // one of the batch's entries.
      const rows = await query<SuccessorRow & PredecessorColumns>(
        client,
        `SELECT e.seq, e.collection, e.record_id, e.ts, e.data, e.packed,
           p.seq AS p_seq, p.packed IS NOT NULL AS p_packed, p.data IS NULL AS p_empty,
           CASE WHEN p.seq > $2 THEN NULL ELSE p.data END AS p_data,
           o.seq AS o_seq, get_byte(o.packed, 0) AS o_run
         FROM (SELECT seq, collection, record_id, ts, data, packed FROM events
           WHERE tenant = $1 AND seq > $2 AND kind = 'record' ORDER BY seq LIMIT $3) AS e
         LEFT JOIN LATERAL (SELECT seq, data, packed FROM events WHERE tenant = $1 AND kind = 'record'
           AND collection = e.collection AND record_id = e.record_id AND seq < e.seq
           ORDER BY seq DESC LIMIT 1) AS p ON true
         LEFT JOIN LATERAL (SELECT seq, packed FROM events WHERE tenant = $1 AND kind = 'record'
           AND collection = e.collection AND record_id = e.record_id AND seq < p.seq
           ORDER BY seq DESC LIMIT 1) AS o ON true
         ORDER BY e.seq`,
        [tenant, start, limit],
      );
      const out: HistoryBatch = {
        scanned: 0,
        packed: 0,
        bytesBefore: 0,
        bytesAfter: 0,
        watermark,
        done: false,
      };
      let reachedCutoff = false;
      const inBatch = new Map(rows.map((r) => [Number(r.seq), r]));
      const parsed = new Map<number, Data>();
      /** Run positions of the entries this batch packs (not yet written). */
      const runs = new Map<number, number>();
      const updates: { seq: number; packed: Buffer }[] = [];
      for (const e of rows) {
        if (e.ts >= before) {
          reachedCutoff = true;
          break;
        }
        const seq = Number(e.seq);
        watermark = seq;
        out.scanned++;
        if (e.p_seq === null || e.p_packed || e.p_empty) continue;
        const pSeq = Number(e.p_seq);
        const pText = e.p_data ?? inBatch.get(pSeq)?.data ?? null;
        if (pText === null) continue;
        let next: Data | null = e.data === null ? null : (JSON.parse(e.data) as Data);
        // The next entry of a record edited often is the one this batch packs next: parsed once.
        if (next) parsed.set(seq, next);
        // Not expected (an entry is compacted after the one it superseded), but rebuilt if so.
        if (e.packed) next = (await unpackOne(client, tenant, e.collection, e.record_id, seq)) ?? null;
        const data = parsed.get(pSeq) ?? (JSON.parse(pText) as Data);
        parsed.delete(pSeq);
        const oSeq = e.o_seq === null ? null : Number(e.o_seq);
        const olderRun = (oSeq !== null ? runs.get(oSeq) : undefined) ?? e.o_run ?? 0;
        const packed = packEntry(data, next, olderRun);
        runs.set(pSeq, runOf(packed));
        updates.push({ seq: pSeq, packed });
        out.packed++;
        out.bytesBefore += Buffer.byteLength(pText);
        out.bytesAfter += packed.length;
      }
      if (updates.length > 0) {
        await query(
          client,
          `UPDATE events SET data = NULL, packed = x.packed
           FROM unnest($2::bigint[], $3::bytea[]) AS x (seq, packed)
           WHERE events.tenant = $1 AND events.seq = x.seq AND events.packed IS NULL`,
          [tenant, updates.map((u) => u.seq), updates.map((u) => u.packed)],
        );
      }
      if (watermark !== start) {
        await query(client, 'UPDATE history_compaction SET seq = $2 WHERE tenant = $1', [tenant, watermark]);
      }
      out.watermark = watermark;
      out.done = reachedCutoff || rows.length < limit;
      return out;
    });
  }
}
