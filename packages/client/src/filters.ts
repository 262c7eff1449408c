/**
 * Field filters, with the server's semantics so that a filtered local list shows what a filtered
 * channel delivers: a field is a dotted path into the data; it matches when the value there, written
 * as text (strings as they are, numbers and booleans as JSON writes them), equals the filter's text.
 */

export type FilterValue = string | number | boolean;
export type RecordFilter = Record<string, FilterValue>;

function valueAtPath(data: unknown, path: string): unknown {
  let value: unknown = data;
  for (const part of path.split('.')) {
    if (typeof value !== 'object' || value === null || Array.isArray(value)) return undefined;
    value = (value as Record<string, unknown>)[part];
  }
  return value;
}

export function matchesFilter(data: unknown, filter: RecordFilter | undefined): boolean {
  if (!filter) return true;
  for (const [field, expected] of Object.entries(filter)) {
    const value = valueAtPath(data, field);
    if (typeof value !== 'string' && typeof value !== 'number' && typeof value !== 'boolean') return false;
    if (String(value) !== String(expected)) return false;
  }
  return true;
}

/** The channel for a collection and optional filter, with the filter's fields in a stable order. */
export function recordsChannel(collection: string, filter?: RecordFilter): string {
  const fields = Object.keys(filter ?? {}).sort();
  if (fields.length === 0) return `records:${collection}`;
  const params = new URLSearchParams();
  for (const field of fields) params.append(field, String(filter![field]));
  return `records:${collection}?${params.toString()}`;
}
