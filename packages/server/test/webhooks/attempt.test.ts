import { describe, expect, it } from 'vitest';
import { classifyAttempt } from '../../src/webhooks/attempt.ts';
import type { SendOutcome } from '../../src/webhooks/sender.ts';

const row = { id: 'd1', tenant: 't', webhookId: 'w', attempts: 1, budgetStart: 0 };
const answer = (status: number | null, extra: Partial<SendOutcome> = {}): SendOutcome => ({
  status,
  retryAfter: undefined,
  body: null,
  error: null,
  durationMs: 3,
  ...extra,
});
const ctx = { schedule: [1000, 2000], startedAt: 0, now: 10_000, random: () => 0.5 };

describe('classifyAttempt', () => {
  it('takes any 2xx as success', () => {
    const r = classifyAttempt(row, answer(204), ctx);
    expect(r).toMatchObject({
      success: true,
      next: { status: 'success' },
      countsAsFailure: false,
      error: null,
    });
  });

  it('retries a failure after the schedule, then dead-letters it once the budget is spent', () => {
    expect(classifyAttempt(row, answer(500), ctx)).toMatchObject({
      success: false,
      next: { status: 'pending', at: 11_000 },
      countsAsFailure: true,
      error: 'HTTP 500',
    });
    expect(classifyAttempt({ ...row, attempts: 3 }, answer(500), ctx).next).toEqual({ status: 'failed' });
  });

  it('waits as long as a 429 asks, without counting it towards disabling', () => {
    const r = classifyAttempt(row, answer(429, { retryAfter: '60' }), ctx);
    expect(r.next).toEqual({ status: 'pending', at: 70_000 });
    expect(r.countsAsFailure).toBe(false);
  });

  it('names redirects, and disables the endpoint on 410', () => {
    expect(classifyAttempt(row, answer(302), ctx).error).toBe('HTTP 302: redirects are not followed');
    expect(classifyAttempt(row, answer(410), ctx).disable).toBe('the endpoint answered 410 Gone');
    expect(classifyAttempt(row, answer(null, { error: 'timeout' }), ctx).error).toBe('timeout');
  });
});
