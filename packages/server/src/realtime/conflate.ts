/**
 * Conflated catch-up for devices that allow it (`conflate: true`): a window of a records channel's
 * backlog is read at once and only the latest change of each record in it is sent, in seq order, after
 * a `conflated` frame saying how many were skipped and up to which seq. The channel's cursor moves to
 * the window's last seq, so a later resume starts exactly after what was conflated.
 */
import type { LogEvent } from '@syncbridge/protocol';

/** At most this many log entries are read into one conflated window (the rest follow in more windows). */
export const CONFLATE_WINDOW = 10_000;

/** One read of a backlog: the events to send, the seq read up to, whether more may follow. */
export interface BacklogRead {
  events: LogEvent[];
  /** The last seq read (0 when nothing was read). */
  through: number;
  more: boolean;
  /** Changes left out because a later change of their record follows in `events`. */
  skipped: number;
}

/** The latest change of each record of `events` (domain events all kept), in seq order. */
export function conflateEvents(events: readonly LogEvent[]): { events: LogEvent[]; skipped: number } {
  const latest = new Map<string, number>();
  events.forEach((event, index) => {
    if (event.kind === 'record') latest.set(`${event.collection}\u0000${event.id}`, index);
  });
  const kept = events.filter(
    (event, index) => event.kind !== 'record' || latest.get(`${event.collection}\u0000${event.id}`) === index,
  );
  return { events: kept, skipped: events.length - kept.length };
}

/**
 * Reads the backlog after `afterSeq` in pages of `pageSize`: one page, or (conflating) up to
 * CONFLATE_WINDOW entries conflated to the latest change of each record.
 */
export async function readBacklog(
  readPage: (afterSeq: number) => Promise<LogEvent[]>,
  afterSeq: number,
  pageSize: number,
  conflating: boolean,
  /** Whether an event belongs to the channel (only those are conflated and counted). */
  matches: (event: LogEvent) => boolean = () => true,
): Promise<BacklogRead> {
  const read: LogEvent[] = [];
  let through = afterSeq;
  let more = false;
  do {
    const page = await readPage(through);
    read.push(...page);
    if (page.length > 0) through = page[page.length - 1]!.seq;
    more = page.length >= pageSize;
  } while (conflating && more && read.length < CONFLATE_WINDOW);
  if (!conflating) return { events: read, through: read.length ? through : 0, more, skipped: 0 };
  const { events, skipped } = conflateEvents(read.filter(matches));
  return { events, through: read.length ? through : 0, more, skipped };
}
