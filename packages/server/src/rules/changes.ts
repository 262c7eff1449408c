/**
 * Access rule changes on live subscriptions: the log event that announces a collection's new rules to
 * every node (`syncbridge.rules_changed`, appended after `PUT /v1/collections/{c}` changed them), and the
 * key of what a reader's view depends on (the read and hide rules), so a subscription can tell whether it
 * must be sent again under the new rules. This module must never do I/O.
 */
import type { LogEvent } from '@syncbridge/protocol';
import type { CompiledCollectionRules } from './compile.ts';

/** The domain event that says a collection's access rules changed (payload `{ collection }`). */
export const RULES_CHANGED_EVENT = 'syncbridge.rules_changed';

/** The collection whose rules the event says changed, or null for any other event. */
export function rulesChangedCollection(event: LogEvent): string | null {
  if (event.kind !== 'event' || event.type !== RULES_CHANGED_EVENT) return null;
  const payload = event.payload as { collection?: unknown } | null | undefined;
  return typeof payload?.collection === 'string' ? payload.collection : null;
}

/** What readers' views depend on: the read rule and the hide rules, as text (equal text, equal views). */
export function readRulesKey(rules: CompiledCollectionRules | null | undefined): string {
  if (!rules) return '';
  return JSON.stringify([
    rules.read?.source ?? null,
    rules.hide.map(({ path, rule }) => [path, rule.source]),
  ]);
}
