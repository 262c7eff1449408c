/**
 * `useCollection` and `useRecord`: a collection's records (or one record) from the client's cache,
 * kept current by one shared subscription per collection and filter. Both read through
 * `useSyncExternalStore`, so every component of one render sees the same cache state (no tearing), and
 * a component re-renders only when what it reads changed: a list when a record in it changed, a row when
 * its own record did. They never write; writes go through `useSyncClient().collection(name)`.
 */
import type { CachedRecord, RecordFilter } from '@syncbridge/client';
import { useCallback, useSyncExternalStore } from 'react';
import { collectionStore } from './collection-store.ts';
import { useSyncClient } from './provider.ts';

export interface UseCollectionOptions {
  /** Only the records whose fields equal these values (dotted paths allowed), as a filtered channel. */
  filter?: RecordFilter;
}

/**
 * The records of a collection (matching `filter`), sorted by id, as this client sees them: the server's
 * state with pending local writes applied. The array keeps its identity until one of its records
 * changes, and each record object keeps its identity until that record changes, so `memo` rows skip
 * re-rendering. Subscribes the collection on the server while mounted (shared with every other hook on
 * the same collection and filter).
 * @example
 * const open = useCollection<Todo>('todos', { filter: { done: false } });
 * return <ul>{open.map((t) => <li key={t.id}>{t.data.title}</li>)}</ul>;
 */
export function useCollection<T extends object = Record<string, unknown>>(
  name: string,
  options: UseCollectionOptions = {},
): readonly CachedRecord<T>[] {
  const client = useSyncClient();
  const handle = collectionStore<T>(client, name, options.filter);
  const subscribe = useCallback(
    (onChange: () => void) => {
      const off = handle.store.onList(onChange);
      handle.retain();
      return () => {
        off();
        handle.release();
      };
    },
    [handle],
  );
  const read = useCallback(() => handle.store.list(), [handle]);
  return useSyncExternalStore(subscribe, read, read);
}

export interface UseRecordOptions {
  /**
   * The filtered channel that keeps the record current: pass the filter of the list it belongs to, so
   * both share one subscription. Default: the whole collection. A record outside the filter reads as
   * undefined.
   */
  filter?: RecordFilter;
}

/**
 * One record as this client sees it, or undefined (not loaded, deleted, or no `id`). The component
 * re-renders only when this record changes, not when others of the collection do.
 * @example
 * const Row = memo(function Row({ id }: { id: string }) {
 *   const todo = useRecord<Todo>('todos', id);
 *   return <li>{todo?.data.title}{todo?.pending ? ' (saving)' : ''}</li>;
 * });
 */
export function useRecord<T extends object = Record<string, unknown>>(
  name: string,
  id: string | null | undefined,
  options: UseRecordOptions = {},
): CachedRecord<T> | undefined {
  const client = useSyncClient();
  const handle = collectionStore<T>(client, name, options.filter);
  const subscribe = useCallback(
    (onChange: () => void) => {
      if (id === null || id === undefined) return () => undefined;
      const off = handle.store.onRecord(id, onChange);
      handle.retain();
      return () => {
        off();
        handle.release();
      };
    },
    [handle, id],
  );
  const read = useCallback(
    () => (id === null || id === undefined ? undefined : handle.store.record(id)),
    [handle, id],
  );
  return useSyncExternalStore(subscribe, read, read);
}
