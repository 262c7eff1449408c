/**
 * `SyncProvider` hands one `SyncClient` to the components below it; `useSyncClient()` reads it back
 * (for writes: `useSyncClient().collection('todos').put(…)`). The provider never creates, connects or
 * closes the client: the application owns its lifecycle, so a re-render or a StrictMode double mount
 * never opens a second socket.
 */
import type { SyncClient } from '@syncbridge/client';
import { createContext, createElement, type ReactNode, useContext } from 'react';

const SyncClientContext = createContext<SyncClient | null>(null);
SyncClientContext.displayName = 'SyncClient';

export interface SyncProviderProps {
  /** The client every hook below reads from; create it once, outside the component tree. */
  client: SyncClient;
  children?: ReactNode;
}

/**
 * Makes `client` available to the syncbridge hooks of every component below.
 * @example
 * const client = new SyncClient({ url, token, storage: new IndexedDbStorage({ name: 'todos' }) });
 * createRoot(el).render(<SyncProvider client={client}><App /></SyncProvider>);
 */
export function SyncProvider({ client, children }: SyncProviderProps): ReactNode {
  return createElement(SyncClientContext.Provider, { value: client }, children);
}

/**
 * The client of the nearest `SyncProvider`; throws when there is none (a mistake in the tree, reported
 * at the first render rather than as an empty screen).
 * @example const todos = useSyncClient().collection<Todo>('todos');
 */
export function useSyncClient(): SyncClient {
  const client = useContext(SyncClientContext);
  if (!client) throw new Error('useSyncClient: no SyncProvider above this component');
  return client;
}
