/**
 * Access rules on REST reads: a record, a listing page, a record's history and the log (`GET /v1/events`)
 * as one caller may see them. A record the rules refuse is left out exactly as a missing one would be
 * (callers answer 404 for a single record), and pages are filled from further store reads so that a
 * refused record neither shortens a page nor shows in a cursor. Decisions come from decide.ts.
 */
import type { LogEvent, MutationResult, SyncRecord } from '@syncbridge/protocol';
import type { Principal } from '../auth/principal.ts';
import { auditVisible } from './audit.ts';
import { canRead, type RuledCollection, readIsRuled } from './decide.ts';
import { EventAccess, eventWithout, removalOf } from './fanout.ts';
import { visibleRecord } from './writes.ts';

/** The record as the caller may see it, or null when the rules refuse it (answer as if it were missing). */
export function readableRecord(
  principal: Principal,
  collection: RuledCollection,
  record: SyncRecord,
): SyncRecord | null {
  if (!readIsRuled(principal, collection)) return record;
  // A tombstone keeps its last data: the rule judges that, so a refused record's delete stays unseen.
  if (!canRead(principal, collection, { id: record.id, data: record.data })) return null;
  return visibleRecord(principal, collection, record);
}

/** A record's data at one version (from its log entry) as the caller may see it, or null when refused. */
export function readableVersion(
  principal: Principal,
  collection: RuledCollection,
  event: LogEvent,
): LogEvent | null {
  if (!readIsRuled(principal, collection)) return event;
  const data = event.data ?? null;
  if (!canRead(principal, collection, { id: event.id ?? '', data })) return null;
  const hidden = new EventAccess(collection, event).view(principal).paths;
  return eventWithout(event, hidden);
}

/**
 * Log entries as the caller may see them: record changes of records it may not read are left out, a
 * change that takes a record out of what it may read becomes a removal (`op: "delete"`, `data: null`), and
 * hidden fields are removed. Domain events pass unchanged, but for audit events naming a record the
 * caller may not be shown (rules/audit.ts).
 */
export function visibleEvents(
  principal: Principal,
  collectionOf: (name: string) => RuledCollection | undefined,
  events: readonly LogEvent[],
): LogEvent[] {
  const out: LogEvent[] = [];
  for (const event of events) {
    if (event.kind === 'event') {
      if (auditVisible(principal, collectionOf, event)) out.push(event);
      continue;
    }
    const collection = event.collection ? collectionOf(event.collection) : undefined;
    if (!collection || !readIsRuled(principal, collection)) {
      out.push(event);
      continue;
    }
    const access = new EventAccess(collection, event);
    const delivery = access.delivery(principal);
    if (delivery === 'skip') continue;
    if (delivery === 'remove') {
      out.push(removalOf(event));
      continue;
    }
    const shown = eventWithout(event, access.view(principal).paths);
    if (delivery === 'arrive') {
      const { previous: _previous, ...arrived } = shown;
      out.push(arrived);
    } else out.push(shown);
  }
  return out;
}

/**
 * Reads pages from `read` (from a cursor, at most `size` items) until `limit` items survive `keep` or the
 * source ends; returns the kept items and whether the source has more. Without rules, one read suffices.
 */
export async function fillPage<T, C>(options: {
  limit: number;
  start: C;
  read: (after: C, size: number) => Promise<T[]>;
  cursorOf: (item: T) => C;
  keep: (items: T[]) => T[];
}): Promise<{ items: T[]; more: boolean }> {
  const { limit, read, cursorOf, keep } = options;
  const size = Math.max(limit + 1, 100);
  const items: T[] = [];
  let after = options.start;
  for (;;) {
    const page = await read(after, size);
    items.push(...keep(page));
    if (items.length > limit) return { items: items.slice(0, limit), more: true };
    if (page.length < size) return { items, more: false };
    after = cursorOf(page[page.length - 1]!);
  }
}

/**
 * A remembered mutation result replayed to a caller (the same mid again) as a `duplicate`: the record it
 * names as this caller may see it, or (when the rules refuse that record) neither the record nor its
 * version or conflict, so that a mid of someone else's write shows nothing of a record the caller may
 * not read.
 */
export function replayedResult(
  principal: Principal,
  collectionOf: (name: string) => RuledCollection | undefined,
  first: MutationResult,
): MutationResult {
  const result: MutationResult = {
    ...first,
    status: 'duplicate',
    originalStatus: first.originalStatus ?? first.status,
  };
  const record = result.record;
  const collection = record ? collectionOf(record.collection) : undefined;
  if (!record || !collection || !readIsRuled(principal, collection)) return result;
  const seen = readableRecord(principal, collection, record);
  if (seen) return seen === record ? result : { ...result, record: seen };
  const { record: _record, version: _version, conflictId: _conflictId, ...rest } = result;
  return rest;
}
