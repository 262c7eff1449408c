/**
 * The fan-out hub: routes each committed event of a tenant to the subscriptions that may see it.
 * Subscriptions are indexed by tenant and routing key (collection or event type), so an event only
 * visits subscriptions that can match. Each event is serialized once, and each distinct channel name's
 * frame is built once, whatever the number of subscribers. Under access rules, each event's decisions are
 * shared by its subscriptions (one rule run per group of alike subscribers) and each distinct view of it
 * (a removal, hidden fields) is serialized once.
 */
import type { LogEvent } from '@syncbridge/protocol';
import { EventAccess } from '../rules/fanout.ts';
import {
  eventFrameText,
  eventJson,
  type FrameOf,
  type SharedAccess,
  type Subscription,
} from './subscription.ts';

export interface TenantWatcher {
  /** A tenant got its first subscription on this node. */
  watch(tenant: string): void;
  /** A tenant's last subscription on this node ended. */
  unwatch(tenant: string): void;
  /** Resolves once live events of the tenant flow (read backlogs only after this). */
  ready(tenant: string): Promise<void>;
}

export class FanoutHub {
  private readonly tenants = new Map<string, Map<string, Set<Subscription>>>();
  deliveries = 0;

  constructor(private readonly watcher?: TenantWatcher) {}

  add(sub: Subscription): void {
    let byKey = this.tenants.get(sub.tenant);
    if (!byKey) {
      byKey = new Map();
      this.tenants.set(sub.tenant, byKey);
      this.watcher?.watch(sub.tenant);
    }
    let set = byKey.get(sub.routingKey);
    if (!set) {
      set = new Set();
      byKey.set(sub.routingKey, set);
    }
    set.add(sub);
  }

  remove(sub: Subscription): void {
    const byKey = this.tenants.get(sub.tenant);
    const set = byKey?.get(sub.routingKey);
    if (!byKey || !set) return;
    set.delete(sub);
    if (set.size === 0) byKey.delete(sub.routingKey);
    if (byKey.size === 0) {
      this.tenants.delete(sub.tenant);
      this.watcher?.unwatch(sub.tenant);
    }
  }

  /** Resolves once live events of the tenant flow to its subscriptions; read backlogs after this. */
  ready(tenant: string): Promise<void> {
    return this.watcher?.ready(tenant) ?? Promise.resolve();
  }

  subscriberCount(): number {
    let n = 0;
    for (const byKey of this.tenants.values()) for (const set of byKey.values()) n += set.size;
    return n;
  }

  /** Offers committed events, in seq order, to the tenant's matching subscriptions; returns the frames sent. */
  dispatch(tenant: string, events: LogEvent[]): number {
    const byKey = this.tenants.get(tenant);
    if (!byKey) return 0;
    const before = this.deliveries;
    for (const event of events) {
      const key = event.kind === 'record' ? `r:${event.collection}` : `e:${event.type}`;
      const exact = byKey.get(key);
      const wildcard = event.kind === 'event' ? byKey.get('e:*') : undefined;
      if (!exact && !wildcard) continue;
      let json: string | undefined;
      let frames: Map<string, Buffer> | undefined;
      let viewJsons: Map<string, string> | undefined;
      const frame: FrameOf = (channel, view) => {
        frames ??= new Map();
        const key = view ? `${view.key}\u0000${channel}` : channel;
        let buf = frames.get(key);
        if (!buf) {
          let text: string;
          if (view) {
            viewJsons ??= new Map();
            text = viewJsons.get(view.key) ?? eventJson(view.event);
            viewJsons.set(view.key, text);
          } else text = json ??= eventJson(event);
          buf = Buffer.from(eventFrameText(channel, text));
          frames.set(key, buf);
        }
        this.deliveries += 1;
        return buf;
      };
      let access: EventAccess | undefined;
      const shared: SharedAccess = (collection) => {
        access ??= new EventAccess(collection, event);
        return access;
      };
      if (exact) for (const sub of exact) sub.offer(event, frame, shared);
      if (wildcard) for (const sub of wildcard) sub.offer(event, frame, shared);
    }
    return this.deliveries - before;
  }

  /** Every subscription of this node (metrics read their positions at scrape time). */
  *subscriptions(): Iterable<Subscription> {
    for (const byKey of this.tenants.values()) for (const set of byKey.values()) yield* set;
  }
}
