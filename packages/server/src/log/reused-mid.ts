/**
 * A mid names one write. When a mutation arrives with a mid whose remembered first result names another
 * record (a client bug, or another user of the tenant who used that mid first), answering `duplicate`
 * would drop the write while the client is told it was done; it is refused with CONFLICT instead.
 * A first result that names no record (a rejection without one) cannot be compared and replays as is.
 */
import type { Mutation, MutationResult } from '@syncbridge/protocol';

export function reusedMidRefusal(first: MutationResult, m: Mutation): MutationResult | null {
  const named = first.record;
  if (!named || (named.collection === m.collection && named.id === m.id)) return null;
  return {
    mid: m.mid,
    status: 'rejected',
    error: {
      code: 'CONFLICT',
      message: `mid ${m.mid} was already used for a write to another record; give each write its own mid`,
    },
  };
}
