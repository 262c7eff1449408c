/**
 * Access rules on stored conflicts: a conflict shows to its writer (and to admins, who bypass rules) only
 * while the read rule lets the caller read the record, with the fields hidden from it removed from all
 * three sides (base, server, client). Used by the REST conflict routes and the WebSocket `conflict` push.
 * Decisions come from decide.ts; this module must never do I/O.
 */
import type { Conflict } from '@syncbridge/protocol';
import type { Principal } from '../auth/principal.ts';
import { canRead, hide, type RuledCollection, readIsRuled } from './decide.ts';

/** The conflict as the caller may see it, or null when the read rule refuses its record. */
export function visibleConflict(
  principal: Principal,
  collection: RuledCollection | undefined,
  conflict: Conflict,
): Conflict | null {
  if (!collection || !readIsRuled(principal, collection)) return conflict;
  const id = conflict.recordId;
  if (!canRead(principal, collection, { id, data: conflict.server })) return null;
  const seen = (data: Record<string, unknown> | null) =>
    data ? hide(principal, collection, { id, data }) : data;
  return {
    ...conflict,
    server: seen(conflict.server) ?? {},
    base: seen(conflict.base),
    client: seen(conflict.client),
  };
}
