/**
 * A token bucket: tokens come back at `ratePerSec` up to `burst`, and each unit of work takes one. The
 * one implementation behind the per-user and per-tenant request limits and the per-endpoint webhook
 * start rate. Pure arithmetic over the times it is given: it never reads a clock or sets a timer.
 */

export interface BucketSpec {
  /** Tokens added per second. */
  ratePerSec: number;
  /** Bucket size: the burst allowed after a quiet period. */
  burst: number;
}

export class TokenBucket {
  private level: number;
  private at: number;

  /** A full bucket at time `now` (ms). */
  constructor(spec: BucketSpec, now: number) {
    this.level = spec.burst;
    this.at = now;
  }

  /** Tokens in the bucket after the refill up to `now` (fractions included). */
  refill(spec: BucketSpec, now: number): number {
    this.level = Math.min(spec.burst, this.level + ((now - this.at) / 1000) * spec.ratePerSec);
    this.at = now;
    return this.level;
  }

  get tokens(): number {
    return this.level;
  }

  /** When the bucket was last refilled (ms). */
  get refilledAt(): number {
    return this.at;
  }

  /** Takes up to `wanted` whole tokens (call `refill` first); returns how many it took. */
  take(wanted: number): number {
    const n = Math.max(0, Math.min(wanted, Math.floor(this.level)));
    this.level -= n;
    return n;
  }

  /** Returns tokens taken and not used. */
  giveBack(n: number): void {
    this.level += n;
  }

  /** Milliseconds until one whole token is back (0 when one is there). */
  msUntilToken(spec: BucketSpec): number {
    return this.level >= 1 ? 0 : ((1 - this.level) / spec.ratePerSec) * 1000;
  }
}
