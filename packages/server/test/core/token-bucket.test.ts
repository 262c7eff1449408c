import { describe, expect, it } from 'vitest';
import { Backoff } from '../../src/core/backoff.ts';
import { TokenBucket } from '../../src/core/token-bucket.ts';

describe('TokenBucket', () => {
  const spec = { ratePerSec: 10, burst: 5 };

  it('starts full, takes whole tokens only, and refills at its rate up to the burst', () => {
    const b = new TokenBucket(spec, 0);
    expect(b.take(8)).toBe(5);
    expect(b.take(1)).toBe(0);
    expect(b.msUntilToken(spec)).toBe(100);
    b.refill(spec, 250);
    expect(b.take(5)).toBe(2);
    b.refill(spec, 10_000);
    expect(b.tokens).toBe(5);
  });

  it('takes back what was given back', () => {
    const b = new TokenBucket(spec, 0);
    expect(b.take(5)).toBe(5);
    b.giveBack(3);
    expect(b.take(5)).toBe(3);
  });
});

describe('Backoff', () => {
  it('doubles from its first delay up to its cap, and starts over on reset', () => {
    const b = new Backoff({ initialMs: 250, maxMs: 2000, factor: 2, jitter: 0 });
    expect([b.next(), b.next(), b.next(), b.next(), b.next()]).toEqual([250, 500, 1000, 2000, 2000]);
    b.reset();
    expect(b.next()).toBe(250);
  });
});
