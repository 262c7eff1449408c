/**
 * Access rules on audit events: a server-written domain event (`syncbridge.*`) whose payload names a
 * record (`collection` and `id`, as `syncbridge.conflict_resolved` does) would tell who reads the log or
 * an `events:` channel that the record exists. Under a read rule that applies to the caller, such an
 * event shows only to its actor (who could read the record when acting) and to admins, who bypass rules.
 * `syncbridge.rules_changed` shows to admins only. Other domain events are the publishers' own and pass
 * unchanged. This module must never do I/O.
 */
import type { LogEvent } from '@syncbridge/protocol';
import type { Principal } from '../auth/principal.ts';
import { RULES_CHANGED_EVENT } from './changes.ts';
import { bypassesRules, type RuledCollection } from './decide.ts';

/** The record an audit event names, or null when it names none. */
export function recordNamedBy(event: LogEvent): { collection: string; id: string } | null {
  if (event.kind !== 'event' || !event.type?.startsWith('syncbridge.')) return null;
  const payload = event.payload as { collection?: unknown; id?: unknown } | null | undefined;
  if (typeof payload?.collection !== 'string' || typeof payload.id !== 'string') return null;
  return { collection: payload.collection, id: payload.id };
}

/** Whether the caller sees this domain event (always, unless it is an audit event of a ruled record). */
export function auditVisible(
  principal: Principal,
  collectionOf: (name: string) => RuledCollection | undefined,
  event: LogEvent,
): boolean {
  if (bypassesRules(principal)) return true;
  // The server's notice to its nodes; a user's subscriptions get `reset` instead (realtime/rule-changes.ts).
  if (event.kind === 'event' && event.type === RULES_CHANGED_EVENT) return false;
  const named = recordNamedBy(event);
  if (!named) return true;
  if (!collectionOf(named.collection)?.rules?.read) return true;
  return event.actor === principal.user;
}
