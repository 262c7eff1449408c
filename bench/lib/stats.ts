/** Small statistics for benchmark figures: median and spread of repetitions, percentiles of samples. */

export interface Summary {
  median: number;
  min: number;
  max: number;
  /** (max - min) / median, in percent: how far the repetitions disagree. */
  spreadPct: number;
  values: number[];
}

export function median(values: readonly number[]): number {
  if (values.length === 0) return Number.NaN;
  const sorted = [...values].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  return sorted.length % 2 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
}

export function summarize(values: readonly number[]): Summary {
  const med = median(values);
  const min = Math.min(...values);
  const max = Math.max(...values);
  return { median: med, min, max, spreadPct: med ? ((max - min) / med) * 100 : 0, values: [...values] };
}

/** The p-th percentile (0..100) of samples that are already sorted ascending (nearest rank). */
export function percentileSorted(sorted: ArrayLike<number>, p: number): number {
  if (sorted.length === 0) return Number.NaN;
  const rank = Math.ceil((p / 100) * sorted.length);
  return sorted[Math.min(sorted.length - 1, Math.max(0, rank - 1))]!;
}
