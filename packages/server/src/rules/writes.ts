/**
 * Access rules on the write path: the one check every mutation passes inside its commit (WebSocket
 * `mutate`, `POST /v1/mutations`, REST record writes, connectors' writes), after the change is computed and
 * before anything is stored, so a refused write is `rejected` with FORBIDDEN and changes nothing. Also what
 * the writer is shown of the record afterwards (its hidden fields removed). Decisions come from decide.ts.
 */
import type { Mutation, MutationResult, SyncRecord } from '@syncbridge/protocol';
import type { Principal } from '../auth/principal.ts';
import { canRead, canWrite, hide, type RuledCollection, readIsRuled, writeKind } from './decide.ts';

/** A rejected result when the rules refuse this write, or null when it may go ahead. */
export function refusedWrite(
  principal: Principal,
  collection: RuledCollection,
  mutation: Pick<Mutation, 'mid' | 'op' | 'id' | 'collection'>,
  stored: SyncRecord | null,
  next: Record<string, unknown> | null,
): MutationResult | null {
  if (!collection.rules) return null;
  const data = stored && !stored.deleted ? stored.data : null;
  const kind = writeKind(mutation.op, data);
  if (canWrite(principal, collection, { id: mutation.id, data }, kind === 'delete' ? null : next, kind))
    return null;
  return {
    mid: mutation.mid,
    status: 'rejected',
    error: {
      code: 'FORBIDDEN',
      message: `the access rules of ${mutation.collection} do not allow this ${kind}`,
    },
  };
}

/**
 * Whether the stored record exists for everyone but this writer: live, and refused by the read rule. The
 * writer then writes as if it were missing (a delete answers NOT_FOUND, a conflict never arises), and a
 * write that would have created it is refused as a create (refusedHiddenWrite).
 */
export function hiddenFromWriter(
  principal: Principal,
  collection: RuledCollection,
  stored: SyncRecord | null,
): boolean {
  if (!stored || stored.deleted || !readIsRuled(principal, collection)) return false;
  return !canRead(principal, collection, { id: stored.id, data: stored.data });
}

/**
 * The answer to a write that would create a record the writer may not read: the words of a refused
 * create, so that it reads the same as when the create rule refuses a missing record.
 */
export function refusedHiddenWrite(mutation: Pick<Mutation, 'mid' | 'collection'>): MutationResult {
  return {
    mid: mutation.mid,
    status: 'rejected',
    error: {
      code: 'FORBIDDEN',
      message: `the access rules of ${mutation.collection} do not allow this create`,
    },
  };
}

/** The record as this caller may see it: the same object when no field is hidden from them. */
export function visibleRecord(
  principal: Principal,
  collection: RuledCollection,
  record: SyncRecord,
): SyncRecord {
  if (!collection.rules || collection.rules.hide.length === 0) return record;
  const data = hide(principal, collection, { id: record.id, data: record.data });
  return data === record.data || data === null ? record : { ...record, data };
}
