/**
 * `useTopic`: the latest tick and order book depth per symbol of a connector's high-rate feed
 * (`topic:<name>`), from one shared `TopicStream` per client and channel. Notifications are coalesced
 * to one per task, so a burst of ticks (or a conflated batch) costs one render, and a symbol's tick
 * object keeps its identity until a new tick for it arrives (`memo` rows of other symbols skip the
 * render). It never publishes ticks.
 */
import { type Depth, type SyncClient, type Tick, type TopicStream, topicChannel } from '@syncbridge/client';
import { useCallback, useSyncExternalStore } from 'react';
import { useSyncClient } from './provider.ts';
import { type SharedStore, type StoreHandle, sharedStore } from './shared-stores.ts';

/** What `useTopic` returns: each symbol's latest values, and whether the first snapshot arrived. */
export interface TopicSnapshot {
  /** The latest tick by symbol. */
  ticks: Readonly<Record<string, Tick>>;
  /** The latest order book depth by symbol (for feeds that send depth). */
  depth: Readonly<Record<string, Depth>>;
  /** True once the server's snapshot of the latest values arrived (on join and after a reconnect). */
  ready: boolean;
}

const EMPTY: TopicSnapshot = Object.freeze({
  ticks: Object.freeze({}),
  depth: Object.freeze({}),
  ready: false,
});

class TopicStore implements SharedStore {
  private stream: TopicStream | null = null;
  private ticks = new Map<string, Tick>();
  private books = new Map<string, Depth>();
  private ready = false;
  private snapshot: TopicSnapshot = EMPTY;
  private dirty = false;
  private notifyScheduled = false;
  private readonly listeners = new Set<() => void>();
  /** Why the topic could not be joined (an invalid name): thrown at the next read. */
  private failure: unknown = null;

  constructor(
    private readonly client: SyncClient,
    private readonly name: string,
    private readonly symbols: string[] | undefined,
  ) {}

  start(): void {
    let stream: TopicStream;
    try {
      stream = this.client.topic(this.name, this.symbols ? { symbols: this.symbols } : {});
    } catch (err) {
      // Thrown from the next read, inside a render, where an error boundary can show it.
      this.failure = err;
      this.changed();
      return;
    }
    stream.on('tick', ({ fromSnapshot: _s, ...tick }) => {
      this.ticks.set(tick.symbol, tick);
      this.changed();
    });
    stream.on('depth', ({ fromSnapshot: _s, ...depth }) => {
      this.books.set(depth.symbol, depth);
      this.changed();
    });
    stream.on('snapshot', () => {
      this.ready = true;
      this.changed();
    });
    this.stream = stream;
  }

  stop(): void {
    this.stream?.close();
    this.stream = null;
    this.failure = null;
  }

  onChange(listener: () => void): () => void {
    this.listeners.add(listener);
    return () => {
      this.listeners.delete(listener);
    };
  }

  read(): TopicSnapshot {
    if (this.failure) throw this.failure;
    if (this.dirty) {
      this.dirty = false;
      this.snapshot = {
        ticks: Object.fromEntries(this.ticks),
        depth: Object.fromEntries(this.books),
        ready: this.ready,
      };
    }
    return this.snapshot;
  }

  private changed(): void {
    this.dirty = true;
    if (this.notifyScheduled) return;
    this.notifyScheduled = true;
    queueMicrotask(() => {
      this.notifyScheduled = false;
      for (const listener of [...this.listeners]) listener();
    });
  }
}

function topicStore(client: SyncClient, name: string, symbols: readonly string[] | undefined) {
  const sorted = symbols && symbols.length > 0 ? [...new Set(symbols)].sort() : undefined;
  const channel = topicChannel(name, sorted ? { symbols: sorted } : {});
  return sharedStore(client, channel, () => new TopicStore(client, name, sorted));
}

/**
 * The latest tick (and depth) of each symbol of a topic, or of the `symbols` given (in any order), and
 * whether the first snapshot arrived. Joins the topic while mounted.
 * @example
 * const { ticks, ready } = useTopic('prices', ['EURUSD', 'GBPUSD']);
 * return ready ? <p>EURUSD {ticks.EURUSD?.price}</p> : <p>loading…</p>;
 */
export function useTopic(name: string, symbols?: readonly string[]): TopicSnapshot {
  const client = useSyncClient();
  const handle: StoreHandle<TopicStore> = topicStore(client, name, symbols);
  const subscribe = useCallback(
    (onChange: () => void) => {
      const off = handle.store.onChange(onChange);
      handle.retain();
      return () => {
        off();
        handle.release();
      };
    },
    [handle],
  );
  const read = useCallback(() => handle.store.read(), [handle]);
  return useSyncExternalStore(subscribe, read, read);
}
