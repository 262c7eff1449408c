/**
 * Field filters in the SDK: the rule itself (what matches) is the protocol's, the same the server
 * applies, so a filtered local list shows what a filtered channel delivers. Here: the channel name a
 * collection and filter subscribe to.
 */
import type { RecordFilter } from '@syncbridge/protocol';

export { type FilterValue, matchesFilter, type RecordFilter } from '@syncbridge/protocol';

/** The channel for a collection and optional filter, with the filter's fields in a stable order. */
export function recordsChannel(collection: string, filter?: RecordFilter): string {
  const fields = Object.keys(filter ?? {}).sort();
  if (fields.length === 0) return `records:${collection}`;
  const params = new URLSearchParams();
  for (const field of fields) params.append(field, String(filter![field]));
  return `records:${collection}?${params.toString()}`;
}
