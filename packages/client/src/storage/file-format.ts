/**
 * The lines of FileStorage's log (format version 3) and their decoding. A replica write is one line:
 * its JSON header (records by collection as columns of ids, versions and seqs, forgotten records,
 * channels) then, after a tab, the records' data as one JSON array per collection. JSON never holds a
 * raw tab, so the split is unambiguous, and the data (most of the bytes) can be parsed later than the
 * ids: a first page of a large replica is shown after parsing only its own part (`LazyData`). Groups hold
 * at most GROUP_SIZE records and each group's data is its own tab-separated part (`[[...]]`); a line
 * with a single data part for all its groups (the first writer of version 3) is still read.
 * Version 2 lines (one `[collection, id, version, seq, data]` array per record, no tab) are still read.
 */
import type { ReplicaTable } from './replica-table.ts';
import type { QueuedMutation, ReplicaWrite, StoredRecord } from './types.ts';

export const FORMAT = 'syncbridge-client-storage';
export const FORMAT_VERSION = 3;

export interface Header {
  format: typeof FORMAT;
  version: number;
  replicaSchema: number;
}

type Data = Record<string, unknown> | null;

/** A record in a version 2 log: `[collection, id, version, seq, data]` (still read, never written). */
type RecordRow = [string, string, number, number, Data];

/** The records of one collection in a replica line: `[collection, ids, versions, seqs]`. */
type RecordColumns = [string, string[], number[], number[]];

/**
 * One replica write's header: records (`g`, by collection, their data after the tab; `r` in version 2
 * files), forgotten records, channels `[channel, cursor, usedAt]`, dropped channels.
 */
export interface ReplicaLine {
  g?: RecordColumns[];
  r?: RecordRow[];
  f?: Array<[string, string]>;
  c?: Array<[string, number, number]>;
  x?: string[];
}

/** One line of the log after the header. */
export type LogLine = { q: QueuedMutation[] } | { d: string[] } | { scope: string } | ReplicaLine;

/** The most records in one group of a line, so that a first page parses a small part of a large write. */
export const GROUP_SIZE = 1000;

/** A replica write as one line of text (no newline). */
export function encodeWrite(write: ReplicaWrite): string {
  const line: ReplicaLine = {};
  const groups: RecordColumns[] = [];
  const data: Data[][] = [];
  let group: RecordColumns | null = null;
  for (const r of write.records) {
    if (group?.[0] !== r.collection || group[1].length >= GROUP_SIZE) {
      group = [r.collection, [], [], []];
      groups.push(group);
      data.push([]);
    }
    group[1].push(r.id);
    group[2].push(r.version);
    group[3].push(r.seq);
    data[data.length - 1]!.push(r.data);
  }
  if (groups.length > 0) line.g = groups;
  if (write.forget.length > 0) line.f = write.forget;
  if (write.channels.length > 0) line.c = write.channels.map((c) => [c.channel, c.cursor, c.usedAt]);
  if (write.dropChannels.length > 0) line.x = write.dropChannels;
  const head = JSON.stringify(line);
  // One data part per group, tab-separated: a first page parses only the parts of its records.
  return data.length > 0 ? `${head}\t${data.map((d) => JSON.stringify([d])).join('\t')}` : head;
}

/** The data of one line's records, not parsed yet: the records wait with `data: null` until it is. */
interface Segment {
  text: string;
  /** The records of each group, in the order of the data arrays. */
  groups: StoredRecord[][];
  lineNumber: number;
}

/**
 * The records' data not parsed yet. `parse(records)` parses the segments holding these records (a
 * first page); `parseAll()` the rest. Until a record's segment is parsed its `data` is null: nothing
 * outside FileStorage sees such a record before.
 */
export class LazyData {
  private segments: Segment[] = [];

  constructor(private readonly fail: (message: string) => Error) {}

  get pending(): boolean {
    return this.segments.length > 0;
  }

  /**
   * The data of one line: one JSON array of arrays for all its groups, or (as written now) one
   * tab-separated part per group, each parsed on its own.
   */
  add(text: string, groups: StoredRecord[][], lineNumber: number): void {
    const parts = groups.length > 1 ? text.split('\t') : [text];
    if (parts.length !== groups.length) {
      this.segments.push({ text, groups, lineNumber });
      return;
    }
    parts.forEach((part, g) => {
      this.segments.push({ text: part, groups: [groups[g]!], lineNumber });
    });
  }

  /** Parses the segments that hold any of these records. */
  parse(records: Set<StoredRecord>): void {
    if (records.size === 0) return;
    this.segments = this.segments.filter((segment) => {
      const needed = segment.groups.some((group) => group.some((record) => records.has(record)));
      if (needed) this.fill(segment);
      return !needed;
    });
  }

  /** Forgets what is not parsed yet (its records were wiped). */
  clear(): void {
    this.segments = [];
  }

  parseAll(): void {
    const segments = this.segments;
    this.segments = [];
    for (const segment of segments) this.fill(segment);
  }

  private fill(segment: Segment): void {
    let data: Data[][];
    try {
      data = JSON.parse(segment.text) as Data[][];
    } catch (err) {
      throw this.fail(`damaged at line ${segment.lineNumber}: ${(err as Error).message}`);
    }
    segment.groups.forEach((group, g) => {
      const values = data[g] ?? [];
      for (let i = 0; i < group.length; i++) group[i]!.data = values[i] ?? null;
    });
  }
}

/** Applies one replica line to the table; its data, after the tab, goes to `lazy` unparsed. */
export function applyLine(
  replica: ReplicaTable,
  line: ReplicaLine,
  dataText: string | null,
  lazy: LazyData,
  lineNumber: number,
): void {
  if (line.g) {
    const groups: StoredRecord[][] = [];
    for (const [collection, ids, versions, seqs] of line.g) {
      const table = replica.collection(collection);
      const group: StoredRecord[] = [];
      for (let i = 0; i < ids.length; i++) {
        const id = ids[i]!;
        const record: StoredRecord = { collection, id, version: versions[i]!, seq: seqs[i]!, data: null };
        table.set(id, record);
        group.push(record);
      }
      groups.push(group);
    }
    lazy.add(dataText ?? '[]', groups, lineNumber);
  }
  for (const [collection, id, version, seq, data] of line.r ?? []) {
    replica.setRecord({ collection, id, version, seq, data });
  }
  for (const [collection, id] of line.f ?? []) replica.deleteRecord(collection, id);
  for (const [channel, cursor, usedAt] of line.c ?? [])
    replica.channels.set(channel, { channel, cursor, usedAt });
  for (const channel of line.x ?? []) replica.channels.delete(channel);
}
