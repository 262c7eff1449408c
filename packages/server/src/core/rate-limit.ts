/**
 * Token-bucket rate limits per user and per tenant, shared by the WebSocket and REST paths. A request
 * costs one token from the user's bucket and one from the tenant's; it is refused (RATE_LIMITED, with
 * the wait until a token is back) when either is empty, so one flooding client is throttled without
 * slowing anyone else. Buckets idle long enough to be full are dropped to bound memory.
 */
import { type BucketSpec, TokenBucket } from './token-bucket.ts';

export type { BucketSpec } from './token-bucket.ts';

export interface RateLimitSettings {
  user: BucketSpec;
  tenant: BucketSpec;
}

export interface RateDecision {
  ok: boolean;
  /** When refused: milliseconds until a token is available. */
  retryAfterMs: number;
}

export class RateLimiter {
  private readonly buckets = new Map<string, TokenBucket>();
  private sweeps = 0;

  constructor(
    private readonly defaults: RateLimitSettings,
    private readonly perTenant: Record<string, Partial<RateLimitSettings>> = {},
    private readonly now: () => number = () => performance.now(),
  ) {}

  settingsFor(tenant: string): RateLimitSettings {
    const override = this.perTenant[tenant];
    return override ? { ...this.defaults, ...override } : this.defaults;
  }

  /** Takes one token for the user and one for the tenant, or refuses without taking either. */
  take(tenant: string, user: string): RateDecision {
    const settings = this.settingsFor(tenant);
    const t = this.now();
    const userBucket = this.refill(`u\u0000${tenant}\u0000${user}`, settings.user, t);
    const tenantBucket = this.refill(`t\u0000${tenant}`, settings.tenant, t);
    if (userBucket.tokens < 1 || tenantBucket.tokens < 1) {
      const wait = Math.max(
        userBucket.msUntilToken(settings.user),
        tenantBucket.msUntilToken(settings.tenant),
      );
      return { ok: false, retryAfterMs: Math.ceil(wait) };
    }
    userBucket.take(1);
    tenantBucket.take(1);
    if (++this.sweeps % 10_000 === 0) this.sweep(t);
    return { ok: true, retryAfterMs: 0 };
  }

  private refill(key: string, spec: BucketSpec, t: number): TokenBucket {
    let bucket = this.buckets.get(key);
    if (!bucket) {
      bucket = new TokenBucket(spec, t);
      this.buckets.set(key, bucket);
      return bucket;
    }
    bucket.refill(spec, t);
    return bucket;
  }

  /** Drops buckets that have been idle long enough to be full again. */
  private sweep(t: number): void {
    for (const [key, bucket] of this.buckets) {
      if (t - bucket.refilledAt > 60_000) this.buckets.delete(key);
    }
  }
}
