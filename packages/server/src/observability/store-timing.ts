/**
 * Times the store's reads outside the write transaction (backlog pages, snapshots, heads, record reads)
 * into `syncbridge_store_read_duration_seconds`, by wrapping those methods of one store instance. The
 * write path has its own figure (`syncbridge_commit_duration_seconds`); whatever calls these reads,
 * WebSocket catch-up, the sequencer's gap fills or REST, is timed alike.
 */
import type { Histogram } from 'prom-client';
import type { Store } from '../store/types.ts';

const TIMED_READS = [
  'readEvents',
  'snapshot',
  'headSeq',
  'getRecord',
  'listRecords',
  'countEventsAfter',
] as const satisfies readonly (keyof Store)[];

export function timeStoreReads(store: Store, histogram: Histogram<'operation'>): void {
  for (const operation of TIMED_READS) {
    const read = (store[operation] as (...args: unknown[]) => Promise<unknown>).bind(store);
    const timer = histogram.labels(operation);
    (store as unknown as Record<string, unknown>)[operation] = async (...args: unknown[]) => {
      const started = performance.now();
      try {
        return await read(...args);
      } finally {
        timer.observe((performance.now() - started) / 1000);
      }
    };
  }
}
