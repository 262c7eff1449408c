/**
 * Access rules on a device's `pending` summary (REST `GET /v1/devices/{id}` and the WebSocket `pending`
 * frame): the log's per-collection counts count every change, so for each collection whose read rule
 * applies to the caller the changes are read and counted as the caller would receive them (a change of a
 * record it may not read is not counted; one that takes a record out of what it reads counts, as the
 * removal it receives). A collection with nothing readable pending is left out, as if it had no changes.
 * Decisions come from decide.ts and reads.ts.
 */
import type { DevicePending, LogEvent } from '@syncbridge/protocol';
import type { Principal } from '../auth/principal.ts';
import { bypassesRules, type RuledCollection, readIsRuled } from './decide.ts';
import { visibleEvents } from './reads.ts';

const PAGE = 1000;

export interface PendingSources {
  /** The collection's current settings. */
  collectionOf(name: string): Promise<RuledCollection>;
  /** Record changes of one collection after `afterSeq`, in seq order. */
  readEvents(query: { afterSeq: number; limit: number; collection: string }): Promise<LogEvent[]>;
  /** At most this many changes are read per collection (the summary is then `capped`). */
  limit: number;
}

/** The summary as this caller may see it (the same object when no rule applies). */
export async function readablePending(
  principal: Principal,
  pending: DevicePending,
  sources: PendingSources,
): Promise<DevicePending> {
  if (bypassesRules(principal)) return pending;
  let result = pending;
  for (const name of Object.keys(pending.collections)) {
    const collection = await sources.collectionOf(name);
    if (!readIsRuled(principal, collection)) continue;
    let readable = 0;
    let read = 0;
    let after = pending.cursor;
    let capped = false;
    for (;;) {
      const page = await sources.readEvents({ afterSeq: after, limit: PAGE, collection: name });
      const within = page.filter((e) => e.seq <= pending.head && e.kind === 'record');
      readable += visibleEvents(principal, () => collection, within).length;
      read += page.length;
      if (page.length < PAGE || within.length < page.length) break;
      if (read >= sources.limit) {
        capped = true;
        break;
      }
      after = page[page.length - 1]!.seq;
    }
    const collections = { ...result.collections };
    const count = result.count - (collections[name] ?? 0) + readable;
    if (readable === 0) delete collections[name];
    else collections[name] = readable;
    result = { ...result, count, collections, ...(capped || result.capped ? { capped: true } : {}) };
  }
  return result;
}
