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
  | ({ kind: 'resolve'; request: ResolveRequest } & Settles<MutationResult>);

/** How many log entries a write may add, for sizing batches. */
export function writeSize(write: PendingWrite): number {
  return write.kind === 'mutations' ? write.mutations.length : 1;
}
