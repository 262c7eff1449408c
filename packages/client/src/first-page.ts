/**
 * A collection's first page: the records shown before the rest of a large replica is restored
 * (`replicaFirstPage`), the smallest ids first, since views list records in id order.
 */

/**
 * The records of a collection's first page (the `size` smallest ids, and every id in `keep`) and the
 * rest. Records usually come in id order (a snapshot's): then it is a slice; otherwise the page's last
 * id is found by selection, without sorting 100,000 ids.
 */
export function splitFirstPage<R extends { id: string }>(
  records: R[],
  size: number,
  keep: Set<string>,
): { page: R[]; rest: R[] } {
  if (records.length <= size) return { page: records, rest: [] };
  let sorted = true;
  for (let i = 1; i < records.length && sorted; i++) if (records[i - 1]!.id > records[i]!.id) sorted = false;
  const page: R[] = [];
  const rest: R[] = [];
  if (sorted) {
    for (let i = 0; i < records.length; i++) {
      const record = records[i]!;
      if (i < size || keep.has(record.id)) page.push(record);
      else rest.push(record);
    }
    return { page, rest };
  }
  const last =
    size > 0
      ? nthSmallest(
          records.map((r) => r.id),
          size - 1,
        )
      : null;
  for (const record of records) {
    if ((last !== null && record.id <= last) || keep.has(record.id)) page.push(record);
    else rest.push(record);
  }
  return { page, rest };
}

/** The `n`th smallest (0-based) of distinct strings, by quickselect (reorders `values`). */
function nthSmallest(values: string[], n: number): string {
  let lo = 0;
  let hi = values.length - 1;
  while (lo < hi) {
    const pivot = values[lo + Math.floor(Math.random() * (hi - lo + 1))]!;
    let i = lo;
    let j = hi;
    while (i <= j) {
      while (values[i]! < pivot) i++;
      while (values[j]! > pivot) j--;
      if (i <= j) {
        const t = values[i]!;
        values[i] = values[j]!;
        values[j] = t;
        i++;
        j--;
      }
    }
    if (n <= j) hi = j;
    else if (n >= i) lo = i;
    else break;
  }
  return values[n]!;
}
