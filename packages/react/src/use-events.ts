/**
 * `useEvents`: the latest domain events of one type (or `'*'`) that reached this component while it
 * was mounted, newest last, bounded by `limit`. Each mounted hook keeps its own window of events (the
 * client shares the channel between them). It never publishes; `useSyncClient().publish(…)` does.
 */
import type { DomainEvent, EventStreamFilter, SyncClient } from '@syncbridge/client';
import { useCallback, useMemo, useSyncExternalStore } from 'react';
import { useSyncClient } from './provider.ts';

export interface UseEventsOptions extends EventStreamFilter {
  /** How many of the latest events to keep. Default 50. */
  limit?: number;
  /** Replay the log after this seq first (only when no other listener has the channel open). */
  since?: number;
}

const NO_EVENTS: readonly DomainEvent<never>[] = Object.freeze([]);

/** The events window of one mounted hook: a new array per arriving event, the same one in between. */
class EventWindow<P> {
  private events: readonly DomainEvent<P>[] = NO_EVENTS;
  /** Why the stream could not start (an invalid type or platform): thrown at the next read. */
  private failure: unknown = null;

  constructor(
    private readonly client: SyncClient,
    private readonly type: string,
    private readonly filter: EventStreamFilter,
    private readonly limit: number,
    private readonly since: number | undefined,
  ) {}

  subscribe(onChange: () => void): () => void {
    try {
      return this.listen(onChange);
    } catch (err) {
      // Thrown from the next read, inside a render, where an error boundary can show it.
      this.failure = err;
      onChange();
      return () => undefined;
    }
  }

  private listen(onChange: () => void): () => void {
    return this.client.events<P>(this.type, this.filter).subscribe(
      (event) => {
        const next = this.events.length >= this.limit ? this.events.slice(1 - this.limit) : [...this.events];
        next.push(event);
        this.events = next;
        onChange();
      },
      this.since === undefined ? {} : { since: this.since },
    );
  }

  read(): readonly DomainEvent<P>[] {
    if (this.failure) throw this.failure;
    return this.events;
  }
}

/**
 * The latest events of `type` (`'*'` for every type), optionally narrowed by `source`/`target`
 * platform, newest last; a component re-renders once per arriving event (or batch of them).
 * @example
 * const trades = useEvents<{ pnl: number }>('trade_closed', { limit: 20 });
 * return <ol>{trades.map((e) => <li key={e.seq}>{e.payload.pnl}</li>)}</ol>;
 */
export function useEvents<P = unknown>(
  type: string,
  options: UseEventsOptions = {},
): readonly DomainEvent<P>[] {
  const client = useSyncClient();
  const { source, target, since } = options;
  const limit = Math.max(1, Math.floor(options.limit ?? 50));
  const window = useMemo(() => {
    const filter: EventStreamFilter = {};
    if (source !== undefined) filter.source = source;
    if (target !== undefined) filter.target = target;
    return new EventWindow<P>(client, type, filter, limit, since);
  }, [client, type, source, target, limit, since]);
  const subscribe = useCallback((onChange: () => void) => window.subscribe(onChange), [window]);
  const read = useCallback(() => window.read(), [window]);
  return useSyncExternalStore(subscribe, read, read);
}
