/**
 * Access rule changes reaching live subscriptions, on every node: the `syncbridge.rules_changed` event
 * is a barrier of the log sequencer, so that before any later event of the tenant is delivered this node
 * reads the tenant's settings again and every records subscription of that collection whose read or hide
 * rules changed is sent again under the new rules (channel-session.ts). Events committed between the
 * settings' commit and the event's are corrected by that resend.
 */
import type { LogEvent } from '@syncbridge/protocol';
import { mainCollection } from '../core/branches.ts';
import type { CollectionRegistry } from '../core/collections.ts';
import { RULES_CHANGED_EVENT, rulesChangedCollection } from '../rules/changes.ts';
import type { FanoutHub } from './hub.ts';
import type { SequencerBarrier } from './sequencer.ts';

export function ruleChangeBarrier(
  collections: Pick<CollectionRegistry, 'list'>,
  hub: () => Pick<FanoutHub, 'subscriptions'>,
): SequencerBarrier {
  return {
    is: (event: LogEvent) => event.kind === 'event' && event.type === RULES_CHANGED_EVENT,
    async after(tenant: string, event: LogEvent) {
      const collection = rulesChangedCollection(event);
      if (collection === null) return;
      await collections.list(tenant, { fresh: true });
      for (const sub of hub().subscriptions()) {
        // A branch's channel (`c@b`) has its collection's rules.
        if (sub.tenant !== tenant || sub.spec.kind !== 'records') continue;
        if (mainCollection(sub.spec.collection) !== collection) continue;
        sub.onRulesChanged?.();
      }
    },
  };
}
