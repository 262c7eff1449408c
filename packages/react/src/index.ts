/**
 * @syncbridge/react: React bindings for the syncbridge client SDK. Every hook reads the client through
 * `useSyncExternalStore`: one consistent state per render (no tearing), stable snapshots (the same
 * array or object while nothing it holds changed), and a re-render only for the components whose
 * records, state or events changed.
 *
 * @example
 * import { SyncClient, IndexedDbStorage } from '@syncbridge/client';
 * import { SyncProvider, useCollection, useStatus } from '@syncbridge/react';
 * const client = new SyncClient({ url, token, storage: new IndexedDbStorage({ name: 'todos' }) });
 * function Todos() {
 *   const todos = useCollection<Todo>('todos');
 *   return <ul>{todos.map((t) => <li key={t.id}>{t.data.title}</li>)}</ul>;
 * }
 * createRoot(el).render(<SyncProvider client={client}><Todos /></SyncProvider>);
 */
export { SyncProvider, type SyncProviderProps, useSyncClient } from './provider.ts';
export { useConflicts, usePendingCount, useStatus } from './use-client-state.ts';
export {
  type UseCollectionOptions,
  type UseRecordOptions,
  useCollection,
  useRecord,
} from './use-collection.ts';
export { type UseEventsOptions, useEvents } from './use-events.ts';
export { type TopicSnapshot, useTopic } from './use-topic.ts';
