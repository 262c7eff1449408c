/**
 * Command-line flags shared by every benchmark script:
 *   --quick          short windows (3 s, 1 s warm-up) for trying things out; not for published figures
 *   --store <list>   sqlite, postgres or all (comma-separated)
 *   --reps <n>       repetitions per point (default 3)
 *   --window <s>     measured window per repetition (default 10 s, 3 s with --quick)
 *   --warmup <s>     warm-up before measuring (default 3 s, 1 s with --quick), never counted
 *   --cpu-prof       run the syncbridge server with --cpu-prof and summarise the profile (slows it down)
 */
import type { StoreKind } from './server-process.ts';

export interface BenchOptions {
  quick: boolean;
  stores: StoreKind[];
  reps: number;
  windowSeconds: number;
  warmupSeconds: number;
  cpuProf: boolean;
}

export const COMMON_FLAGS = {
  quick: { type: 'boolean' },
  store: { type: 'string' },
  reps: { type: 'string' },
  window: { type: 'string' },
  warmup: { type: 'string' },
  'cpu-prof': { type: 'boolean' },
} as const;

function positive(name: string, raw: string | undefined, fallback: number): number {
  if (raw === undefined) return fallback;
  const n = Number(raw);
  if (!Number.isFinite(n) || n <= 0) throw new Error(`--${name} ${raw} must be a positive number`);
  return n;
}

export function parseStores(raw: string | undefined, fallback: StoreKind[]): StoreKind[] {
  if (raw === undefined) return fallback;
  const stores = raw === 'all' ? ['sqlite', 'postgres'] : raw.split(',').map((s) => s.trim());
  for (const s of stores)
    if (s !== 'sqlite' && s !== 'postgres') throw new Error(`--store ${s}: use sqlite, postgres or all`);
  return stores as StoreKind[];
}

export function benchOptions(
  values: {
    quick?: boolean;
    store?: string;
    reps?: string;
    window?: string;
    warmup?: string;
    'cpu-prof'?: boolean;
  },
  defaultStores: StoreKind[],
): BenchOptions {
  const quick = values.quick ?? false;
  return {
    quick,
    stores: parseStores(values.store, defaultStores),
    reps: Math.round(positive('reps', values.reps, 3)),
    windowSeconds: positive('window', values.window, quick ? 3 : 10),
    warmupSeconds: positive('warmup', values.warmup, quick ? 1 : 3),
    cpuProf: values['cpu-prof'] ?? false,
  };
}

/** A script's own numeric flag (e.g. --subscribers), validated like the common ones. */
export function numberFlag(values: Record<string, unknown>, name: string, fallback: number): number {
  const raw = values[name];
  return positive(name, typeof raw === 'string' ? raw : undefined, fallback);
}
