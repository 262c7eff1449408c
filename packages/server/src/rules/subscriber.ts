/**
 * Access rules for one WebSocket subscription of a records channel: what its snapshot, backlog and live
 * events look like to its subscriber. The collection's rules are looked up at every event, so a rule
 * changed on this node applies to the next event a live subscription is offered. Live events share one
 * EventAccess per event (rules/fanout.ts), so a rule runs once per event per group of alike subscribers.
 * Decisions come from decide.ts; this module must never do I/O.
 */
import type { LogEvent, SyncRecord } from '@syncbridge/protocol';
import type { Principal } from '../auth/principal.ts';
import { readRulesKey } from './changes.ts';
import { bypassesRules, groupKey, type RuledCollection, readIsRuled } from './decide.ts';
import { EventAccess, eventWithout, removalOf } from './fanout.ts';
import { readableRecord } from './reads.ts';

/** How a subscriber gets one event: as it is, in another form (`key` names the form for frame reuse), or not. */
export type EventView = 'as_is' | 'skip' | { key: string; event: LogEvent };

export class SubscriberAccess {
  /** This subscriber's group for the read rule it last met (rules change rarely; events come often). */
  private group: { rule: unknown; key: string } | undefined;

  /** The read and hide rules the subscriber's copy was last sent under (its snapshot or subscribe). */
  private applied: string;

  constructor(
    readonly principal: Principal,
    /** The collection's current settings (synchronous: the tenant's settings are loaded at subscribe). */
    private readonly collectionOf: () => RuledCollection | undefined,
  ) {
    this.applied = readRulesKey(collectionOf()?.rules);
  }

  /**
   * True when the collection's read or hide rules are no longer those the subscriber's copy was sent
   * under; the caller then sends the copy again (`reset` and a snapshot) and this records the new rules.
   */
  takeRulesChange(): boolean {
    const now = readRulesKey(this.collectionOf()?.rules);
    if (now === this.applied) return false;
    this.applied = now;
    return true;
  }

  private ruled(): RuledCollection | null {
    const collection = this.collectionOf();
    return collection && readIsRuled(this.principal, collection) ? collection : null;
  }

  /**
   * This subscriber's view of a record event. `shared` gives the EventAccess of this event that every
   * subscriber offered it shares (fan-out); without it the decision is made for this subscriber alone.
   */
  view(event: LogEvent, shared?: (collection: RuledCollection) => EventAccess): EventView {
    if (event.kind !== 'record') return 'as_is';
    const collection = this.ruled();
    if (!collection) return 'as_is';
    const access = shared ? shared(collection) : new EventAccess(collection, event);
    const rule = collection.rules?.read;
    if (rule && this.group?.rule !== rule) this.group = { rule, key: groupKey(rule, this.principal) };
    const delivery = access.delivery(this.principal, this.group);
    if (delivery === 'skip') return 'skip';
    if (delivery === 'remove') return { key: 'removal', event: removalOf(event) };
    const { key, paths } = access.view(this.principal);
    if (delivery === 'arrive') {
      const { previous: _previous, ...arrived } = eventWithout(event, paths);
      return { key: `arrive:${key}`, event: arrived };
    }
    return key === '' ? 'as_is' : { key: `hide:${key}`, event: eventWithout(event, paths) };
  }

  /** The event as this subscriber gets it, or null when it does not (backlog and buffered events). */
  visible(event: LogEvent): LogEvent | null {
    const view = this.view(event);
    return view === 'as_is' ? event : view === 'skip' ? null : view.event;
  }

  /** The snapshot's records this subscriber may read, hidden fields removed. */
  records(records: SyncRecord[]): SyncRecord[] {
    const collection = this.ruled();
    if (!collection) return records;
    return records.flatMap((r) => readableRecord(this.principal, collection, r) ?? []);
  }
}

/** The access of a subscription, or undefined when rules can never apply to this caller (admins). */
export function subscriberAccess(
  principal: Principal,
  collectionOf: () => RuledCollection | undefined,
): SubscriberAccess | undefined {
  return bypassesRules(principal) ? undefined : new SubscriberAccess(principal, collectionOf);
}
