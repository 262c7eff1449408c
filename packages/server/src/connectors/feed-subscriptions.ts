/**
 * REST subscriptions of a feed's symbols (`POST /v1/connectors/{name}/subscriptions`): each one a set of
 * symbols with an id, kept in the connector's state so they survive a restart. The feed is subscribed
 * upstream to the union of them all (and of its configured symbols): a symbol is unsubscribed upstream
 * only when no subscription holds it any more.
 */
import { randomUUID } from 'node:crypto';
import type { ConnectorStateStore, FeedControl } from './types.ts';

export interface FeedSubscription {
  id: string;
  symbols: string[];
  createdAt: string;
  createdBy: string;
}

const KEY = 'subscriptions';

export class FeedSubscriptions {
  private readonly subs = new Map<string, FeedSubscription>();

  constructor(
    private readonly feed: FeedControl,
    private readonly state: ConnectorStateStore,
  ) {}

  async load(): Promise<void> {
    const saved = (await this.state.get<FeedSubscription[]>(KEY)) ?? [];
    for (const sub of saved) this.subs.set(sub.id, sub);
    this.apply();
  }

  private async save(): Promise<void> {
    await this.state.put(KEY, [...this.subs.values()]);
  }

  private apply(): void {
    this.feed.setSymbols(this.symbols());
  }

  /** Every symbol some subscription holds. */
  symbols(): string[] {
    const all = new Set<string>();
    for (const sub of this.subs.values()) for (const s of sub.symbols) all.add(s);
    return [...all].sort();
  }

  async add(symbols: string[], createdBy: string): Promise<FeedSubscription> {
    const sub: FeedSubscription = {
      id: randomUUID(),
      symbols: [...new Set(symbols)],
      createdAt: new Date().toISOString(),
      createdBy,
    };
    this.subs.set(sub.id, sub);
    await this.save();
    this.apply();
    return sub;
  }

  async remove(id: string): Promise<boolean> {
    if (!this.subs.delete(id)) return false;
    await this.save();
    this.apply();
    return true;
  }

  get(id: string): FeedSubscription | undefined {
    return this.subs.get(id);
  }

  list(): FeedSubscription[] {
    return [...this.subs.values()].sort((a, b) => a.createdAt.localeCompare(b.createdAt));
  }
}
