/**
 * Conflict resolution, beside the mutation engine (mutations.ts): given a stored conflict, the record's
 * current state and a person's decision, decides the outcome (a refreshed conflict when the record moved
 * on, or the new record version, its log entry, the audit event and the resolved conflict). Pure: no
 * I/O, no clock or id source of its own; the write path (log/tenant-writer.ts) supplies the state, the
 * HLC ticks, the event ids and the time, and persists what comes out. It must never read or write a store.
 */
import type { Conflict, LogEvent, MutationResult, Resolution, SyncRecord } from '@syncbridge/protocol';
import { SyncError } from './errors.ts';
import { previousValues } from './merge.ts';

/** The audit event every resolution appends to the log. */
export const CONFLICT_RESOLVED_EVENT = 'syncbridge.conflict_resolved';

/**
 * Adds `previous` to a record change: the old values of the fields it changed (by dotted path), so a
 * filtered channel can tell that the record left it. Deletes carry the last data already.
 */
export function withPrevious(
  event: Omit<LogEvent, 'seq'>,
  before: Record<string, unknown> | null,
): Omit<LogEvent, 'seq'> {
  const previous = previousOf(event, before);
  return previous ? { ...event, previous } : event;
}

/** What withPrevious adds to a record change: the old values of the fields it changed, or null. */
export function previousOf(
  event: Pick<LogEvent, 'op' | 'data'>,
  before: Record<string, unknown> | null,
): Record<string, unknown> | null {
  if (!before || event.op === 'delete') return null;
  return previousValues(before, event.data ?? {});
}

/** Who decides: the principal's user, device and whether it administers the tenant. */
export interface Resolver {
  user: string;
  deviceId?: string;
  admin: boolean;
}

/** Refuses a decision that cannot be carried out at all (before the record is read). */
export function assertResolvable(
  conflictId: string,
  conflict: Conflict | null,
  resolution: Resolution,
  data: Record<string, unknown> | undefined,
  by: Resolver,
): asserts conflict is Conflict {
  if (!conflict) throw new SyncError('NOT_FOUND', `no conflict ${conflictId}`);
  if (conflict.actor !== by.user && !by.admin) {
    throw new SyncError('FORBIDDEN', 'only the writer of a conflict or a tenant admin may resolve it');
  }
  if (conflict.status !== 'open') {
    throw new SyncError('CONFLICT', `conflict ${conflictId} was already resolved (${conflict.resolution})`);
  }
  if (resolution === 'merge' && !data) throw new SyncError('BAD_REQUEST', 'merge needs the merged data');
}

/** True when the record changed after the conflict was stored (the decision must be reviewed again). */
export function conflictIsStale(conflict: Conflict, current: SyncRecord | null): boolean {
  return (current?.version ?? 0) !== conflict.serverVersion;
}

export interface ResolutionInput {
  conflict: Conflict;
  current: SyncRecord | null;
  resolution: Resolution;
  data?: Record<string, unknown>;
  by: Resolver;
  /** The collection's schema check (absent: none, or the conflict is stale). */
  validate?: ((data: Record<string, unknown>) => unknown[] | null) | null;
  /** The tenant's head seq before this resolution: its events continue it. */
  head: number;
  now: string;
  /** A fresh HLC tick per call (the change's, then the audit event's). */
  tick: () => string;
  /** A fresh event id per call. */
  newEventId: () => string;
}

export interface ResolutionOutcome {
  result: MutationResult;
  /** The conflict as it is to be stored (refreshed and still open, or resolved). */
  conflict: Conflict;
  /** The new record version (absent: the record stays as it is). */
  record?: SyncRecord;
  /** The log entries to append, with seqs continuing `head`. */
  events: LogEvent[];
}

/** Carries out a person's decision on a stored conflict, unless the record moved on since. */
export function resolveConflict(input: ResolutionInput): ResolutionOutcome {
  const { conflict, current, resolution, data, by, now } = input;
  const conflictId = conflict.id;
  if (conflictIsStale(conflict, current)) {
    // Stale: the record changed after the conflict was stored. Show the new server side and keep it open.
    const refreshed: Conflict = {
      ...conflict,
      serverVersion: current?.version ?? 0,
      server: current?.data ?? {},
    };
    const result: MutationResult = {
      mid: conflictId,
      status: 'rejected',
      conflictId,
      error: {
        code: 'CONFLICT',
        message: `the record moved on to version ${refreshed.serverVersion} since this conflict; review it again`,
      },
    };
    if (current) {
      result.record = current;
      result.version = current.version;
    }
    return { result, conflict: refreshed, events: [] };
  }

  let head = input.head;
  const events: LogEvent[] = [];
  const append = (event: Omit<LogEvent, 'seq'>): LogEvent => {
    const logged = { seq: ++head, ...event } as LogEvent;
    events.push(logged);
    return logged;
  };
  const device = by.deviceId ? { device: by.deviceId } : {};
  let record: SyncRecord | null = current;
  let written: SyncRecord | undefined;
  let changeSeq: number | undefined;
  if (resolution !== 'accept_server') {
    const chosen = resolution === 'merge' ? data! : conflict.client;
    const errors = chosen && input.validate ? input.validate(chosen) : null;
    if (errors) throw new SyncError('BAD_REQUEST', 'data does not match the collection schema', errors);
    const hlc = input.tick();
    record = {
      collection: conflict.collection,
      id: conflict.recordId,
      data: chosen ?? current?.data ?? {},
      version: (current?.version ?? 0) + 1,
      hlc,
      updatedAt: now,
      updatedBy: by.user,
      deleted: chosen === null,
    };
    const draft: Omit<LogEvent, 'seq'> = {
      eventId: input.newEventId(),
      kind: 'record',
      collection: record.collection,
      id: record.id,
      op: chosen === null ? 'delete' : 'put',
      version: record.version,
      data: record.data,
      hlc,
      actor: by.user,
      ts: now,
      ...device,
    };
    changeSeq = append(withPrevious(draft, current && !current.deleted ? current.data : null)).seq;
    written = record;
  }
  const audit = append({
    eventId: input.newEventId(),
    kind: 'event',
    type: CONFLICT_RESOLVED_EVENT,
    payload: {
      conflictId,
      collection: conflict.collection,
      id: conflict.recordId,
      resolution,
      version: record?.version ?? 0,
      ...(changeSeq === undefined ? {} : { changeSeq }),
    },
    actor: by.user,
    ts: now,
    hlc: input.tick(),
    ...device,
  });
  const resolved: Conflict = {
    ...conflict,
    status: 'resolved',
    resolution,
    resolvedBy: by.user,
    resolvedAt: now,
    resolvedSeq: audit.seq,
  };
  const result: MutationResult = {
    mid: conflictId,
    status: 'applied',
    conflictId,
    seq: changeSeq ?? audit.seq,
  };
  if (record) {
    result.record = record;
    result.version = record.version;
  }
  return { result, conflict: resolved, events, ...(written ? { record: written } : {}) };
}
