/**
 * PostgreSQL side of compact history (store/history/packing.ts): the bounded compaction batches, and the
 * chain reads that rebuild compacted versions for event reads, version reads and logged results, on
 * the connection the caller read from (inside a transaction: that transaction's snapshot).
 *
 * A batch locks the tenant's watermark row, so nodes running the job at once compact each version once,
 * and locks the entries it packs (FOR UPDATE), so a retention delete running at the same time waits.
 */
import type { LogEvent } from '@syncbridge/protocol';
import { type ChainRow, type PackedRef, packEntry, resolvePacked, runOf } from '../history/packing.ts';
import type { HistoryBatch, HistoryBatchOptions, HistoryStore } from '../history/types.ts';
import { type EventRow, eventFromRow } from '../rows.ts';
import type { PostgresParts } from './accounts.ts';
import { type Queryable, query } from './pool.ts';

type Data = Record<string, unknown>;

interface SuccessorRow {
  seq: string;
  collection: string;
  record_id: string;
  ts: string;
  data: string | null;
  packed: Buffer | null;
}

function chainFetch(db: Queryable, tenant: string) {
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
      let watermark = start;
      const rows = await query<SuccessorRow>(
        client,
        `SELECT seq, collection, record_id, ts, data, packed FROM events
         WHERE tenant = $1 AND seq > $2 AND kind = 'record' ORDER BY seq LIMIT $3`,
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
      const parsed = new Map<number, Data>();
      for (const e of rows) {
        if (e.ts >= before) {
          reachedCutoff = true;
          break;
        }
        const seq = Number(e.seq);
        const [p, o] = await query<ChainRow & { data: string | null }>(
          client,
          `SELECT seq, data, packed FROM events
           WHERE tenant = $1 AND kind = 'record' AND collection = $2 AND record_id = $3 AND seq < $4
           ORDER BY seq DESC LIMIT 2 FOR UPDATE`,
          [tenant, e.collection, e.record_id, seq],
        );
        watermark = seq;
        out.scanned++;
        if (!p || p.packed || typeof p.data !== 'string') continue;
        let next: Data | null = e.data === null ? null : (JSON.parse(e.data) as Data);
        // The next entry of a record edited often is the one this batch packs next: parsed once.
        if (next) parsed.set(Number(e.seq), next);
        // Not expected (an entry is compacted after the one it superseded), but rebuilt if so.
        if (e.packed) next = (await unpackOne(client, tenant, e.collection, e.record_id, seq)) ?? null;
        const data = parsed.get(Number(p.seq)) ?? (JSON.parse(p.data) as Data);
        parsed.delete(Number(p.seq));
        const packed = packEntry(data, next, o?.packed ? runOf(o.packed) : 0);
        await query(client, 'UPDATE events SET data = NULL, packed = $1 WHERE tenant = $2 AND seq = $3', [
          packed,
          tenant,
          p.seq,
        ]);
        out.packed++;
        out.bytesBefore += Buffer.byteLength(p.data);
        out.bytesAfter += packed.length;
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
