/**
 * Hooks on the client's own state: its connection state, the number of queued writes, and the open
 * conflicts of this user's writes. Each reads a value the client already keeps and re-renders only
 * when that value changes. They never change the client.
 */
import type { Conflict, ConnectionState, SyncClient } from '@syncbridge/client';
import { useCallback, useSyncExternalStore } from 'react';
import { useSyncClient } from './provider.ts';
import { keepIfSame } from './shared-stores.ts';

/**
 * The connection state: `connecting`, `syncing`, `open` (in sync), `offline` or `closed`.
 * @example const status = useStatus(); return <p>{status === 'open' ? 'live' : status}</p>;
 */
export function useStatus(): ConnectionState {
  const client = useSyncClient();
  const subscribe = useCallback((onChange: () => void) => client.on('status', onChange), [client]);
  const read = useCallback(() => client.state, [client]);
  return useSyncExternalStore(subscribe, read, read);
}

/** The replica's load signal, on clients that have it (`whenLoaded()`); older clients have none. */
function whenLoaded(client: SyncClient): Promise<void> | undefined {
  const loader = (client as { whenLoaded?: () => Promise<void> }).whenLoaded;
  return typeof loader === 'function' ? loader.call(client) : undefined;
}

/**
 * How many writes wait for the server's answer (queued offline or on the wire), including those
 * restored from storage after a restart.
 * @example const pending = usePendingCount(); return pending > 0 ? <p>{pending} unsaved</p> : null;
 */
export function usePendingCount(): number {
  const client = useSyncClient();
  const subscribe = useCallback(
    (onChange: () => void) => {
      let active = true;
      // Writes restored from storage count once the client has loaded them.
      whenLoaded(client)?.then(
        () => active && onChange(),
        () => undefined,
      );
      const off = client.on('queue', onChange);
      return () => {
        active = false;
        off();
      };
    },
    [client],
  );
  const read = useCallback(() => client.pendingCount(), [client]);
  return useSyncExternalStore(subscribe, read, read);
}

const conflictSnapshots = new WeakMap<SyncClient, readonly Conflict[]>();

/**
 * The open conflicts of this user's writes that the client knows of, oldest first; resolve one with
 * `useSyncClient().resolve(id, …)`. The array keeps its identity until a conflict opens, changes or is
 * resolved.
 * @example
 * const conflicts = useConflicts();
 * return conflicts.map((c) => <ConflictCard key={c.id} conflict={c} />);
 */
export function useConflicts(): readonly Conflict[] {
  const client = useSyncClient();
  const subscribe = useCallback(
    (onChange: () => void) => {
      const offOpened = client.on('conflict', onChange);
      const offResolved = client.on('conflictResolved', onChange);
      return () => {
        offOpened();
        offResolved();
      };
    },
    [client],
  );
  const read = useCallback(() => {
    const next = keepIfSame(conflictSnapshots.get(client) ?? null, client.conflicts());
    conflictSnapshots.set(client, next);
    return next;
  }, [client]);
  return useSyncExternalStore(subscribe, read, read);
}
