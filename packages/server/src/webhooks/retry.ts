/**
 * The retry policy: which answers count as success, when the next attempt is, and what a 410 or a 429
 * means. A schedule lists the waits before each retry: `default` is scenario 1's 1 s, 2 s, 4 s (three
 * retries, four attempts); `long` is Svix's 5 s, 5 min, 30 min, 2 h, 5 h, 10 h, 10 h (about 27 h of
 * outage); or a comma-separated list of durations (`500ms,5s,1m,1h`). Each wait is randomized by ±10 %
 * (jitter), so endpoints that failed together do not retry in lockstep. A `Retry-After` on a 429 or 503
 * lengthens the wait to what the endpoint asked for (at most 24 h).
 */

export const SCHEDULES: Record<string, number[]> = {
  default: [1_000, 2_000, 4_000],
  long: [5_000, 300_000, 1_800_000, 7_200_000, 18_000_000, 36_000_000, 36_000_000],
};

const UNITS: Record<string, number> = {
  ms: 1,
  s: 1_000,
  m: 60_000,
  min: 60_000,
  h: 3_600_000,
  d: 86_400_000,
};

/** Milliseconds of `500ms`, `5s`, `5m`, `2h`, `1d` (a bare number is seconds); null if unreadable. */
export function parseDuration(text: string): number | null {
  const m = /^(\d+(?:\.\d+)?)\s*(ms|s|m|min|h|d)?$/.exec(text.trim());
  if (!m) return null;
  const ms = Number(m[1]) * UNITS[m[2] ?? 's']!;
  return Number.isFinite(ms) ? Math.round(ms) : null;
}

/** The retry waits of a schedule setting; throws with a readable message if it is not one. */
export function parseSchedule(setting: string): number[] {
  const named = SCHEDULES[setting.trim()];
  if (named) return named;
  const parts = setting.split(',').map((s) => s.trim());
  const waits = parts.map(parseDuration);
  if (
    parts.length === 0 ||
    parts.length > 50 ||
    waits.some((w) => w === null || w < 0 || w > 7 * 86_400_000)
  ) {
    throw new Error(
      `webhookRetrySchedule "${setting}" must be "default", "long" or a list of durations like "1s,30s,5m" (each at most 7d)`,
    );
  }
  return waits as number[];
}

export const MAX_RETRY_AFTER_MS = 86_400_000;

/** A Retry-After header (seconds or an HTTP date) as milliseconds from now; null if absent or unreadable. */
export function parseRetryAfter(value: string | undefined, nowMs: number): number | null {
  if (!value) return null;
  const trimmed = value.trim();
  if (/^\d+$/.test(trimmed)) return Math.min(Number(trimmed) * 1000, MAX_RETRY_AFTER_MS);
  const date = Date.parse(trimmed);
  if (Number.isNaN(date)) return null;
  return Math.min(Math.max(0, date - nowMs), MAX_RETRY_AFTER_MS);
}

export function jittered(waitMs: number, random: () => number = Math.random): number {
  return Math.round(waitMs * (0.9 + 0.2 * random()));
}

/**
 * When the delivery that just failed is tried again, or null when its retries are used up (dead letter).
 * `attemptsInBudget` counts the attempts since the budget started, including the one that just failed.
 */
export function nextAttemptAt(
  schedule: readonly number[],
  attemptsInBudget: number,
  nowMs: number,
  retryAfterMs: number | null,
  random: () => number = Math.random,
): number | null {
  const wait = schedule[attemptsInBudget - 1];
  if (wait === undefined) return null;
  return nowMs + Math.max(jittered(wait, random), retryAfterMs ?? 0);
}
