/**
 * SQLite side of compact history (store/history/packing.ts): the bounded compaction batches, and the
 * chain reads that rebuild compacted versions for event reads, version reads and logged results.
 * Rebuilding reads on the connection the caller read from, so a read inside a write transaction sees
 * that transaction's state.
 */
import type { LogEvent } from '@syncbridge/protocol';
import type Database from 'better-sqlite3';
import {
  type ChainRow,
  type PackedRef,
  packEntry,
  resolvePacked,
  resolvePackedSync,
  runOf,
} from '../history/packing.ts';
import type { HistoryBatch, HistoryBatchOptions, HistoryStore } from '../history/types.ts';
import { EVENT_COLUMNS, type EventRow, eventFromRow } from '../rows.ts';
import { UNFINISHED_OF_TENANT } from '../sealed-backfill-sql.ts';
import type { SqliteParts } from './accounts.ts';

type Data = Record<string, unknown>;

interface SuccessorRow {
  seq: number;
  collection: string;
  record_id: string;
  ts: string;
  data: string | null;
  packed: Buffer | null;
}

export const CHAIN_SQL = `SELECT seq, data, packed FROM events INDEXED BY events_by_record
  WHERE tenant = ? AND kind = 'record' AND collection = ? AND record_id = ? AND seq >= ? ORDER BY seq LIMIT ?`;

export class SqliteHistory implements HistoryStore {
  private readonly chains = new Map<Database.Database, Database.Statement<unknown[], ChainRow>>();
  private readonly stmts;

  constructor(private readonly parts: SqliteParts) {
    const w = parts.writer;
    this.stmts = {
      watermark: w.prepare<[string], { seq: number }>('SELECT seq FROM history_compaction WHERE tenant = ?'),
      readWatermark: parts.reader.prepare<[string], { seq: number }>(
        'SELECT seq FROM history_compaction WHERE tenant = ?',
      ),
      setWatermark: w.prepare(
        `INSERT INTO history_compaction (tenant, seq) VALUES (?, ?)
         ON CONFLICT (tenant) DO UPDATE SET seq = excluded.seq`,
      ),
      successors: w.prepare<[string, number, number], SuccessorRow>(
        `SELECT seq, collection, record_id, ts, data, packed FROM events
         WHERE tenant = ? AND seq > ? AND kind = 'record' ORDER BY seq LIMIT ?`,
      ),
      previous: w.prepare<[string, string, string, number], ChainRow>(
        `SELECT seq, data, packed FROM events INDEXED BY events_by_record
         WHERE tenant = ? AND kind = 'record' AND collection = ? AND record_id = ? AND seq < ?
         ORDER BY seq DESC LIMIT 2`,
      ),
      pack: w.prepare('UPDATE events SET data = NULL, packed = ? WHERE tenant = ? AND seq = ?'),
      unfinishedBackfill: w.prepare<[string], { one: number }>(UNFINISHED_OF_TENANT('sqlite')),
      // The record's entries on events_by_record, the first of the version (as a walk of the log finds it).
      version: parts.reader.prepare<[string, string, string, number], EventRow & { packed: Buffer | null }>(
        `SELECT ${EVENT_COLUMNS}, packed FROM events INDEXED BY events_by_record
         WHERE tenant = ? AND kind = 'record' AND collection = ? AND record_id = ? AND version = ?
         ORDER BY seq LIMIT 1`,
      ),
    };
  }

  /** The chain reader of one tenant on one connection. */
  private fetch(db: Database.Database, tenant: string) {
    let stmt = this.chains.get(db);
    if (!stmt) {
      stmt = db.prepare<unknown[], ChainRow>(CHAIN_SQL);
      this.chains.set(db, stmt);
    }
    const s = stmt;
    return (collection: string, id: string, fromSeq: number, limit: number) =>
      s.all(tenant, collection, id, fromSeq, limit);
  }

  /** Rebuilds, in place, the data of the events whose rows were compacted (`packed` not null). */
  async unpackEvents(
    db: Database.Database,
    tenant: string,
    rows: { packed?: Buffer | null }[],
    events: LogEvent[],
  ): Promise<void> {
    const refs: PackedRef[] = [];
    for (let i = 0; i < rows.length; i++) {
      const e = events[i];
      if (rows[i].packed) refs.push({ collection: e.collection!, id: e.id!, seq: e.seq });
    }
    if (refs.length === 0) return;
    const found = await resolvePacked(refs, this.fetch(db, tenant));
    for (let i = 0; i < rows.length; i++) {
      if (rows[i].packed) events[i].data = found.get(events[i].seq);
    }
  }

  /** The data of one compacted entry. */
  async unpackOne(
    db: Database.Database,
    tenant: string,
    collection: string,
    id: string,
    seq: number,
  ): Promise<Data | undefined> {
    return (await resolvePacked([{ collection, id, seq }], this.fetch(db, tenant))).get(seq);
  }

  /** A log entry's data, rebuilt when it was compacted. */
  async dataOf(
    db: Database.Database,
    tenant: string,
    collection: string,
    id: string,
    row: { seq: number; data: string | null; packed: Buffer | null },
  ): Promise<Data> {
    if (!row.packed) return JSON.parse(row.data ?? '{}') as Data;
    return (await this.unpackOne(db, tenant, collection, id, row.seq)) ?? {};
  }

  /** A logged record row (rows.ts LOGGED_RECORD_COLUMNS), its data rebuilt when it was compacted. */
  async unpackRow<
    R extends { seq: number; collection: string; id: string; data: unknown; packed: Buffer | null },
  >(db: Database.Database, tenant: string, row: R | undefined): Promise<R | undefined> {
    if (!row?.packed) return row;
    return { ...row, data: (await this.unpackOne(db, tenant, row.collection, row.id, row.seq)) ?? {} };
  }

  async watermark(tenant: string): Promise<number> {
    return this.stmts.readWatermark.get(tenant)?.seq ?? 0;
  }

  async readVersion(
    tenant: string,
    collection: string,
    id: string,
    version: number,
  ): Promise<LogEvent | null> {
    const row = this.stmts.version.get(tenant, collection, id, version);
    if (!row) return null;
    const events = [eventFromRow(row)];
    await this.unpackEvents(this.parts.reader, tenant, [row], events);
    return events[0]!;
  }

  compactBatch(tenant: string, options: HistoryBatchOptions): Promise<HistoryBatch> {
    const w = this.parts.writer;
    return this.parts.exclusive(() => {
      w.exec('BEGIN IMMEDIATE');
      try {
        const batch = this.compactSync(tenant, options);
        w.exec('COMMIT');
        return batch;
      } catch (err) {
        if (w.inTransaction) w.exec('ROLLBACK');
        throw err;
      }
    });
  }

  /**
   * Walks the log after the watermark: each record entry compacts the entry it superseded (the record's
   * previous one), as a delta against itself, so every superseded version is compacted once, oldest first.
   */
  private compactSync(tenant: string, { limit, before }: HistoryBatchOptions): HistoryBatch {
    const s = this.stmts;
    let watermark = s.watermark.get(tenant)?.seq ?? 0;
    const out: HistoryBatch = {
      scanned: 0,
      packed: 0,
      bytesBefore: 0,
      bytesAfter: 0,
      watermark,
      done: false,
    };
    // A sealed-fields backfill of the tenant is unfinished: nothing is compacted until it is done, so no
    // entry is compacted between the pass's rebuild of it and its seal (store/sealed-backfill.ts).
    if (s.unfinishedBackfill.get(tenant)) return { ...out, done: true };
    const rows = s.successors.all(tenant, watermark, limit);
    let reachedCutoff = false;
    const parsed = new Map<number, Data>();
    for (const e of rows) {
      if (e.ts >= before) {
        reachedCutoff = true;
        break;
      }
      const [p, o] = s.previous.all(tenant, e.collection, e.record_id, e.seq);
      watermark = e.seq;
      out.scanned++;
      if (!p || p.packed || typeof p.data !== 'string') continue;
      let next: Data | null = e.data === null ? null : (JSON.parse(e.data) as Data);
      // The next entry of a record edited often is the one this batch packs next: parsed once.
      if (next) parsed.set(Number(e.seq), next);
      if (e.packed) {
        // Not expected (an entry is compacted after the one it superseded), but rebuilt if so.
        next = this.rebuildSync(tenant, e);
      }
      const data = parsed.get(Number(p.seq)) ?? (JSON.parse(p.data) as Data);
      parsed.delete(Number(p.seq));
      const packed = packEntry(data, next, o?.packed ? runOf(o.packed) : 0);
      s.pack.run(packed, tenant, p.seq);
      out.packed++;
      out.bytesBefore += Buffer.byteLength(p.data);
      out.bytesAfter += packed.length;
    }
    if (watermark !== out.watermark) s.setWatermark.run(tenant, watermark);
    out.watermark = watermark;
    out.done = reachedCutoff || rows.length < limit;
    return out;
  }

  private rebuildSync(tenant: string, e: SuccessorRow): Data | null {
    const ref = { collection: e.collection, id: e.record_id, seq: e.seq };
    return resolvePackedSync([ref], this.fetch(this.parts.writer, tenant)).get(e.seq) ?? null;
  }
}
