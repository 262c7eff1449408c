/**
 * What one delivery attempt's answer means: success (any 2xx), a retry at a time from the schedule
 * (lengthened by a 429's or 503's Retry-After), a dead letter once the budget is spent, whether it counts
 * towards disabling the endpoint (a 429 does not: the endpoint answered) and whether it disables it at once
 * (410 Gone). A pure function of the answer, the delivery and the time: it never sends, stores or logs.
 */
import { nextAttemptAt, parseRetryAfter } from './retry.ts';
import type { SendOutcome } from './sender.ts';
import type { AttemptResult } from './types.ts';

/** The parts of a leased delivery an attempt's verdict depends on. */
export interface AttemptedDelivery {
  id: string;
  tenant: string;
  webhookId: string;
  /** Attempts so far, this one included. */
  attempts: number;
  /** `attempts` when the current retry budget started (a manual retry or replay starts a new one). */
  budgetStart: number;
}

export interface AttemptContext {
  /** Waits before each retry (ms). */
  schedule: readonly number[];
  startedAt: number;
  /** When the answer (or failure) was known. */
  now: number;
  random?: () => number;
}

/** The attempt as the ledger records it. */
export function classifyAttempt(
  row: AttemptedDelivery,
  outcome: SendOutcome,
  ctx: AttemptContext,
): AttemptResult {
  const { now } = ctx;
  const success = outcome.status !== null && outcome.status >= 200 && outcome.status < 300;
  let next: AttemptResult['next'] = { status: 'success' };
  let error = outcome.error;
  if (!success) {
    const throttled = outcome.status === 429 || outcome.status === 503;
    const retryAfter = throttled ? parseRetryAfter(outcome.retryAfter, now) : null;
    const at = nextAttemptAt(ctx.schedule, row.attempts - row.budgetStart, now, retryAfter, ctx.random);
    next = at === null ? { status: 'failed' } : { status: 'pending', at };
    if (error === null) {
      error =
        outcome.status !== null && outcome.status >= 300 && outcome.status < 400
          ? `HTTP ${outcome.status}: redirects are not followed`
          : `HTTP ${outcome.status}`;
    }
  }
  return {
    deliveryId: row.id,
    tenant: row.tenant,
    webhookId: row.webhookId,
    attempt: row.attempts,
    startedAt: ctx.startedAt,
    durationMs: outcome.durationMs,
    statusCode: outcome.status,
    error,
    responseBody: outcome.body,
    success,
    next,
    countsAsFailure: !success && outcome.status !== 429,
    ...(outcome.status === 410 ? { disable: 'the endpoint answered 410 Gone' } : {}),
  };
}
