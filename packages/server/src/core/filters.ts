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
