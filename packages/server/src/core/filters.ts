/**
 * Field filters of `records:<collection>?field=value` channels and of record listings.
 * A field is a dotted path into the record's data; it matches when the value there, written as text
 * (strings as they are, numbers and booleans as JSON writes them), equals the filter's text.
 */

export function valueAtPath(data: unknown, path: string): unknown {
  let value: unknown = data;
  for (const part of path.split('.')) {
    if (typeof value !== 'object' || value === null || Array.isArray(value)) return undefined;
    value = (value as Record<string, unknown>)[part];
  }
  return value;
}

/**
 * Whether a record change concerns a filtered view: its new data matches, or its data before the
 * change did (rebuilt from `previous`, the old values of the fields it changed), so the view sees
 * records leave as well as enter.
 */
export function changeMatchesFilter(
  data: unknown,
  previous: Record<string, unknown> | undefined,
  filter: Record<string, string>,
): boolean {
  if (matchesFilter(data, filter)) return true;
  if (!previous) return false;
  const before: Record<string, unknown> = {};
  for (const field in filter) before[field] = field in previous ? previous[field] : valueAtPath(data, field);
  for (const field in filter) if (!matchesFilter({ v: before[field] }, { v: filter[field]! })) return false;
  return true;
}

export function matchesFilter(data: unknown, filter: Record<string, string>): boolean {
  for (const field in filter) {
    const value = valueAtPath(data, field);
    if (typeof value === 'string') {
      if (value !== filter[field]) return false;
    } else if (typeof value === 'number' || typeof value === 'boolean') {
      if (String(value) !== filter[field]) return false;
    } else return false;
  }
  return true;
}
