/**
 * What one tenant's share of a group commit hands back to the log writer (TenantCommit), the
 * idempotency keys under which its results are remembered, and the shape of a logged record change.
 * Shared by the tenant writer and its callers.
 */
import type { Conflict, LogEvent, MutationResult } from '@syncbridge/protocol';
import type { NewDelivery } from '../store/types.ts';

export const EVENT_KEY_PREFIX = 'evt:';
/** A write group's marker is remembered as `grp:<marker>`. */
export const GROUP_KEY_PREFIX = 'grp:';

/**
 * The idempotency key of a mutation: its mid, except that a mid which itself starts with `evt:`, `grp:`
 * or `mid:` is stored as `mid:<mid>`, so no client-chosen mid can collide with an event's or a group's key.
 */
export function mutationKey(mid: string): string {
  return mid.startsWith(EVENT_KEY_PREFIX) || mid.startsWith(GROUP_KEY_PREFIX) || mid.startsWith('mid:')
    ? `mid:${mid}`
    : mid;
}

export interface TenantCommit {
  tenant: string;
  /** Webhook deliveries written with this commit's events. */
  deliveries: NewDelivery[];
  /** The outcome of every mutation in this commit (for metrics). */
  statuses: MutationResult['status'][];
  /** Mutations based on a version that was no longer current: their strategy and outcome (metrics). */
  stale: StaleWrite[];
  events: LogEvent[];
  /** Conflicts stored or changed by this commit, for the writers' and admins' connections. */
  conflicts: Conflict[];
  settle: Array<() => void>;
}

/** A mutation whose `baseVersion` was not the record's current version, and what its strategy made of it. */
export interface StaleWrite {
  strategy: string;
  status: MutationResult['status'];
}

/**
 * A record change as logged: `{ seq, ...withPrevious(draft), device }` with its fields in that order,
 * built as one object literal (the spreads cost more than the rest of appending it). `draft` is what
 * core/mutations made (applyMutation's event).
 */
export function recordEvent(
  seq: number,
  draft: Omit<LogEvent, 'seq'>,
  previous: Record<string, unknown> | null,
  device: string | undefined,
): LogEvent {
  const logged: LogEvent = {
    seq,
    eventId: draft.eventId,
    kind: draft.kind,
    collection: draft.collection,
    id: draft.id,
    op: draft.op,
    version: draft.version,
    data: draft.data,
    hlc: draft.hlc,
    actor: draft.actor,
    ts: draft.ts,
  };
  if (previous) logged.previous = previous;
  if (device) logged.device = device;
  return logged;
}
