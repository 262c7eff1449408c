/**
 * The requests that queue in the LogWriter, each with the promise callbacks of its caller. Types only:
 * it must never hold logic beyond sizing a write.
 */
import type { Mutation, MutationResult, NewDomainEvent, Resolution } from '@syncbridge/protocol';
import type { Principal } from '../auth/principal.ts';

export interface PublishResult {
  seq: number;
  eventId: string;
  duplicate?: boolean;
}

/**
 * A group of writes committed together or not at all (a connector's one upstream transaction): its
 * mutations, then its events, in one transaction with consecutive seqs, remembered under `marker` so the
 * same group given again (after a crash, before the upstream was told) is not applied twice.
 */
export interface WriteGroup {
  marker: string;
  mutations: Mutation[];
  events: NewDomainEvent[];
}

export interface GroupResult {
  /** True when a group of this marker was committed before: nothing was written this time. */
  duplicate: boolean;
  /** The last seq the group wrote (or wrote the first time); 0 when it wrote nothing. */
  seq: number;
  /** Each mutation's outcome (empty for a duplicate). */
  results: MutationResult[];
}

export interface ResolveRequest {
  conflictId: string;
  resolution: Resolution;
  data?: Record<string, unknown>;
}

interface Settles<T> {
  principal: Principal;
  resolve: (value: T) => void;
  reject: (err: unknown) => void;
}

export type PendingWrite =
  | ({ kind: 'mutations'; mutations: Mutation[] } & Settles<MutationResult[]>)
  | ({ kind: 'event'; event: NewDomainEvent } & Settles<PublishResult>)
  | ({ kind: 'resolve'; request: ResolveRequest } & Settles<MutationResult>)
  | ({ kind: 'groups'; groups: WriteGroup[] } & Settles<GroupResult[]>);

/** How many log entries a write may add, for sizing batches. */
export function writeSize(write: PendingWrite): number {
  if (write.kind === 'mutations') return write.mutations.length;
  if (write.kind === 'groups') {
    return Math.max(
      1,
      write.groups.reduce((n, g) => n + g.mutations.length + g.events.length, 0),
    );
  }
  return 1;
}
