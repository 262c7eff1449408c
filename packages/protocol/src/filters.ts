/**
 * The record filter rule, defined once for every place that applies it: the server's live channels
 * (`records:<collection>?field=value`), the SDK's local lists and cache, and the SQL of both stores
 * (compiled from `filterConditions` below, never written by hand per driver).
 *
 * A field is a dotted path into the record's data, each step into an object (never into an array).
 * It matches when the value there is a string equal to the filter's text, or a number or boolean whose
 * JSON text (`String(value)`) equals it; objects, arrays, null and missing fields never match.
 * No TypeBox here: the SDK's bundle imports this module.
 */

export type FilterValue = string | number | boolean;
export type RecordFilter = Record<string, FilterValue>;

/** The JSON types whose values a filter can match (jsonb_typeof's names; SQLite splits number in two). */
export const FILTER_MATCHED_TYPES = ['string', 'number', 'boolean'] as const;

/** One condition of a filter, as the SQL compilers read it: the path's steps and the text to equal. */
export interface FilterCondition {
  path: string[];
  text: string;
}

/** A filter as conditions, in the filter's field order. */
export function filterConditions(filter: RecordFilter): FilterCondition[] {
  return Object.entries(filter).map(([field, value]) => ({ path: field.split('.'), text: String(value) }));
}

export function valueAtPath(data: unknown, path: string): unknown {
  let value: unknown = data;
  for (const part of path.split('.')) {
    if (typeof value !== 'object' || value === null || Array.isArray(value)) return undefined;
    value = (value as Record<string, unknown>)[part];
  }
  return value;
}

/** Whether one value, found at a filter's path, matches the filter's text. */
function valueMatches(value: unknown, expected: FilterValue): boolean {
  return (
    (typeof value === 'string' || typeof value === 'number' || typeof value === 'boolean') &&
    String(value) === String(expected)
  );
}

export function matchesFilter(data: unknown, filter: RecordFilter | undefined): boolean {
  if (!filter) return true;
  for (const field in filter) if (!valueMatches(valueAtPath(data, field), filter[field]!)) return false;
  return true;
}

/**
 * Whether a record change concerns a filtered view: its new data matches, or its data before the
 * change did (rebuilt from `previous`, the old values of the fields it changed, by dotted path), so
 * the view sees records leave as well as enter.
 */
export function changeMatchesFilter(
  data: unknown,
  previous: Record<string, unknown> | undefined,
  filter: RecordFilter,
): boolean {
  if (matchesFilter(data, filter)) return true;
  if (!previous) return false;
  for (const field in filter) {
    const before = field in previous ? previous[field] : valueAtPath(data, field);
    if (!valueMatches(before, filter[field]!)) return false;
  }
  return true;
}
