/**
 * Domain event streams: `client.events('trade_closed').subscribe(fn)` listens on the channel
 * `events:trade_closed` (or `events:*`, optionally narrowed by source or target platform). Each event
 * reaches each listener once, in seq order, also across reconnects (the subscription resumes from the
 * last seq it delivered).
 */
import type { EventMessage } from '@syncbridge/protocol';
import type { SubscriptionManager } from './subscriptions.ts';

/** A domain event as delivered to a listener. */
export interface DomainEvent<P = unknown> {
  seq: number;
  eventId: string;
  type: string;
  payload: P;
  source?: string;
  target?: string;
  priority?: number;
  actor: string;
  ts: string;
}

export interface EventStreamFilter {
  /** Only events from this platform. */
  source?: string;
  /** Only events addressed to this platform. */
  target?: string;
}

export function eventsChannel(type: string, filter: EventStreamFilter = {}): string {
  const params = new URLSearchParams();
  if (filter.source !== undefined) params.append('source', filter.source);
  if (filter.target !== undefined) params.append('target', filter.target);
  const query = params.toString();
  return query ? `events:${type}?${query}` : `events:${type}`;
}

function toDomainEvent<P>(message: EventMessage): DomainEvent<P> {
  const event: DomainEvent<P> = {
    seq: message.seq,
    eventId: message.eventId,
    type: message.eventType ?? '',
    payload: message.payload as P,
    actor: message.actor,
    ts: message.ts,
  };
  if (message.source !== undefined) event.source = message.source;
  if (message.target !== undefined) event.target = message.target;
  if (message.priority !== undefined) event.priority = message.priority;
  return event;
}

export class EventStream<P = unknown> {
  constructor(
    readonly channel: string,
    private readonly subscriptions: SubscriptionManager,
  ) {}

  /**
   * Calls `listener` for every new event on the stream; returns the function that stops it.
   * `since` replays the log after that seq first (only when this is the stream's first listener).
   *
   * @example
   * const off = client.events<{ pnl: number }>('trade_closed').subscribe((e) => console.log(e.seq, e.payload.pnl));
   */
  subscribe(listener: (event: DomainEvent<P>) => void, options: { since?: number } = {}): () => void {
    return this.subscriptions.acquire(
      this.channel,
      {
        onEvent: (message) => {
          if (message.kind === 'event') listener(toDomainEvent<P>(message));
        },
      },
      options,
    );
  }
}
