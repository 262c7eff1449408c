/**
 * One store per client and key (a collection and filter, a topic channel), shared by every hook that
 * reads the same thing, so a list of 500 rows using `useRecord` opens one subscription, not 500.
 * A store starts its subscription with its first listener and ends it a moment after its last one left
 * (a macrotask later), so React's StrictMode unmount/remount or a re-keyed list never unsubscribes and
 * resubscribes on the server. This module owns store lifetimes only; it never reads records.
 */
import type { SyncClient } from '@syncbridge/client';

/** What a shared store does when its first listener arrives and after its last one left. */
export interface SharedStore {
  start(): void;
  stop(): void;
}

const registries = new WeakMap<SyncClient, Map<string, StoreHandle<SharedStore>>>();

/** A shared store and the count of its listeners; `retain`/`release` go around each listener. */
export class StoreHandle<S extends SharedStore> {
  private listeners = 0;
  private running = false;
  private stopTimer: ReturnType<typeof setTimeout> | null = null;

  constructor(
    readonly store: S,
    private readonly registry: Map<string, StoreHandle<SharedStore>>,
    private readonly key: string,
  ) {}

  retain(): void {
    // A component rendered with this store just before it stopped puts it back for the others.
    if (!this.registry.has(this.key)) this.registry.set(this.key, this);
    this.listeners++;
    if (this.stopTimer) clearTimeout(this.stopTimer);
    this.stopTimer = null;
    if (!this.running) {
      this.running = true;
      this.store.start();
    }
  }

  release(): void {
    this.listeners--;
    if (this.listeners > 0 || this.stopTimer) return;
    this.stopTimer = setTimeout(() => {
      this.stopTimer = null;
      if (this.listeners > 0) return;
      this.running = false;
      this.store.stop();
      if (this.registry.get(this.key) === this) this.registry.delete(this.key);
    }, 0);
  }
}

/** The store of `client` under `key`, made by `create` the first time (or after it was stopped). */
export function sharedStore<S extends SharedStore>(
  client: SyncClient,
  key: string,
  create: () => S,
): StoreHandle<S> {
  let registry = registries.get(client);
  if (!registry) {
    registry = new Map();
    registries.set(client, registry);
  }
  let handle = registry.get(key) as StoreHandle<S> | undefined;
  if (!handle) {
    handle = new StoreHandle(create(), registry, key);
    registry.set(key, handle);
  }
  return handle;
}

/** The same array when `next` holds the same items in the same order (by identity), else `next`. */
export function keepIfSame<T>(previous: readonly T[] | null, next: readonly T[]): readonly T[] {
  if (!previous || previous.length !== next.length) return next;
  for (let i = 0; i < next.length; i++) if (previous[i] !== next[i]) return next;
  return previous;
}
