/**
 * Compact history: the stored form of a superseded record version, and how a version is rebuilt from it.
 *
 * A compacted log entry keeps every column but `data`, which moves (as the store holds it: sealed fields
 * stay sealed) into `packed`, one of:
 * - a keyframe: the data itself, deflated;
 * - a delta against the data of the record's next log entry (json-delta.ts), deflated when that is smaller.
 * Its first byte is the entry's place in a run of deltas (0: keyframe, 1..KEYFRAME_EVERY-1: the n-th delta
 * in a row), so no run grows past KEYFRAME_EVERY - 1 deltas and reading any version applies at most that
 * many, from the nearest keyframe or full entry after it. The second byte says whether the rest is deflated.
 *
 * `resolvePacked` rebuilds the data of compacted entries from rows the store fetches (`ChainFetch`);
 * `packEntry` decides the form of one entry at compaction.
 */
import { deflateRawSync, inflateRawSync } from 'node:zlib';
import { type Delta, diff, patch } from './json-delta.ts';

/** At most this many entries of a run are deltas before a keyframe: the bound on deltas per read. */
export const KEYFRAME_EVERY = 16;

type Data = Record<string, unknown>;

/** One log entry of a record, as the chain reader needs it. */
export interface ChainRow {
  seq: number;
  /** The stored data (JSON text on SQLite, parsed on PostgreSQL), null when compacted or absent. */
  data: unknown;
  packed: Uint8Array | null;
}

/** A record's entries from `fromSeq` on, oldest first, at most `limit`. */
export type ChainFetch = (
  collection: string,
  id: string,
  fromSeq: number,
  limit: number,
) => ChainRow[] | Promise<ChainRow[]>;

export class HistoryCorruptError extends Error {}

const DEFLATED = 1;
/** Deltas this small are stored as they are: deflate would not shrink them. */
const DEFLATE_FROM = 120;

function encode(run: number, value: unknown, alwaysDeflate: boolean): Buffer {
  const text = Buffer.from(JSON.stringify(value));
  if (alwaysDeflate || text.length >= DEFLATE_FROM) {
    const packed = deflateRawSync(text);
    if (alwaysDeflate || packed.length < text.length)
      return Buffer.concat([Buffer.from([run, DEFLATED]), packed]);
  }
  return Buffer.concat([Buffer.from([run, 0]), text]);
}

function payload(packed: Uint8Array): unknown {
  const body = packed.subarray(2);
  const text = packed[1] === DEFLATED ? inflateRawSync(body) : body;
  return JSON.parse(Buffer.from(text.buffer, text.byteOffset, text.byteLength).toString('utf8'));
}

/** The run position of a packed entry (0: keyframe). */
export function runOf(packed: Uint8Array): number {
  return packed[0];
}

function parseData(value: unknown): Data | null {
  if (value === null || value === undefined) return null;
  return (typeof value === 'string' ? JSON.parse(value) : value) as Data;
}

/**
 * The packed form of an entry whose data is `data`, given the data of the record's next entry (`next`,
 * null when it has none: a delete) and the run position of the record's previous entry (0 when that is
 * a keyframe, full, or absent).
 */
export function packEntry(data: Data, next: Data | null, olderRun: number): Buffer {
  const run = olderRun + 1;
  if (next === null || run >= KEYFRAME_EVERY) return encode(0, data, true);
  return encode(run, diff(next, data), false);
}

/** Whether an entry can be rebuilt without the entries after it. */
function selfContained(row: ChainRow): boolean {
  return row.packed === null || runOf(row.packed) === 0;
}

function decode(row: ChainRow, next: Data | null | undefined): Data | null {
  if (row.packed === null) return parseData(row.data);
  if (runOf(row.packed) === 0) return payload(row.packed) as Data;
  if (next === undefined || next === null) {
    throw new HistoryCorruptError(`log entry ${row.seq}: the version its delta is against is gone`);
  }
  return patch(next, payload(row.packed) as Delta) as Data;
}

/** The compacted entries to rebuild: their record and seq. */
export interface PackedRef {
  collection: string;
  id: string;
  seq: number;
}

interface FetchRequest {
  collection: string;
  id: string;
  fromSeq: number;
  limit: number;
}

/** The walk of `resolvePacked`, as a generator asking for its rows, so it runs sync or async. */
function* walk(refs: PackedRef[]): Generator<FetchRequest, Map<number, Data>, ChainRow[]> {
  const out = new Map<number, Data>();
  const byRecord = new Map<string, PackedRef[]>();
  for (const ref of refs) {
    const key = `${ref.collection}\u0000${ref.id}`;
    const list = byRecord.get(key);
    if (list) list.push(ref);
    else byRecord.set(key, [ref]);
  }
  for (const list of byRecord.values()) {
    const { collection, id } = list[0];
    const wanted = new Set(list.map((r) => r.seq));
    const first = Math.min(...wanted);
    const last = Math.max(...wanted);
    const rows: ChainRow[] = [];
    let fromSeq = first;
    let end = -1;
    const limit = Math.min(1000, KEYFRAME_EVERY + 1 + 2 * wanted.size);
    while (end < 0) {
      const page = yield { collection, id, fromSeq, limit };
      for (const row of page) {
        rows.push(row);
        if (row.seq >= last && selfContained(row)) {
          end = rows.length - 1;
          break;
        }
      }
      if (end >= 0) break;
      if (page.length < limit) {
        throw new HistoryCorruptError(`log entry ${last}: no full version of ${collection}/${id} after it`);
      }
      fromSeq = Number(page[page.length - 1].seq) + 1;
    }
    let value: Data | null | undefined;
    for (let i = end; i >= 0; i--) {
      value = decode(rows[i], value);
      if (wanted.has(Number(rows[i].seq)) && value) out.set(Number(rows[i].seq), value);
    }
  }
  return out;
}

/**
 * The data of each compacted entry (by seq), rebuilt from its record's later entries. Entries of one
 * record share one walk; a walk reads at most KEYFRAME_EVERY rows past the newest entry asked for.
 */
export async function resolvePacked(refs: PackedRef[], fetch: ChainFetch): Promise<Map<number, Data>> {
  const it = walk(refs);
  let step = it.next();
  while (!step.done) {
    const r = step.value;
    step = it.next(await fetch(r.collection, r.id, r.fromSeq, r.limit));
  }
  return step.value;
}

/** `resolvePacked` with a synchronous fetch (SQLite inside a write transaction). */
export function resolvePackedSync(
  refs: PackedRef[],
  fetch: (collection: string, id: string, fromSeq: number, limit: number) => ChainRow[],
): Map<number, Data> {
  const it = walk(refs);
  let step = it.next();
  while (!step.done) {
    const r = step.value;
    step = it.next(fetch(r.collection, r.id, r.fromSeq, r.limit));
  }
  return step.value;
}
