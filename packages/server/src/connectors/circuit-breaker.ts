/**
 * A circuit breaker per provider: after `failureThreshold` failures in a row it opens, and calls are
 * refused (skipped) without touching the provider; once `openMs` has passed it is half-open and lets
 * one call through as a probe: success closes it, failure opens it again for another `openMs`.
 */
export type CircuitState = 'closed' | 'open' | 'half_open';

export interface CircuitOptions {
  failureThreshold: number;
  openMs: number;
}

export const DEFAULT_CIRCUIT: CircuitOptions = { failureThreshold: 5, openMs: 60_000 };

export interface CircuitStatus {
  state: CircuitState;
  consecutiveFailures: number;
  /** When an open circuit lets its next probe through (ISO), null unless open. */
  retryAt: string | null;
  opened: number;
}

export class CircuitBreaker {
  private failures = 0;
  private openedAt = 0;
  private probing = false;
  private opens = 0;
  private current: CircuitState = 'closed';

  constructor(
    readonly name: string,
    private readonly options: CircuitOptions = DEFAULT_CIRCUIT,
    private readonly onChange?: (state: CircuitState, breaker: CircuitBreaker) => void,
  ) {}

  get state(): CircuitState {
    if (this.current === 'open' && Date.now() - this.openedAt >= this.options.openMs) return 'half_open';
    return this.current;
  }

  /**
   * Asks to make a call: true when the circuit is closed, or half-open and no other probe is out
   * (the caller must then report `success` or `failure`).
   */
  tryAcquire(): boolean {
    const state = this.state;
    if (state === 'closed') return true;
    if (state === 'open' || this.probing) return false;
    this.probing = true;
    if (this.current !== 'half_open') this.set('half_open');
    return true;
  }

  success(): void {
    this.failures = 0;
    this.probing = false;
    if (this.current !== 'closed') this.set('closed');
  }

  failure(): void {
    this.failures += 1;
    const wasProbe = this.probing;
    this.probing = false;
    if (wasProbe || this.current === 'half_open' || this.failures >= this.options.failureThreshold) {
      this.openedAt = Date.now();
      if (this.current !== 'open') {
        this.opens += 1;
        this.set('open');
      }
    }
  }

  /** Gives back a probe that ended without a verdict on the provider (the failure was elsewhere). */
  release(): void {
    this.probing = false;
  }

  status(): CircuitStatus {
    const state = this.state;
    return {
      state,
      consecutiveFailures: this.failures,
      retryAt: state === 'open' ? new Date(this.openedAt + this.options.openMs).toISOString() : null,
      opened: this.opens,
    };
  }

  private set(state: CircuitState): void {
    this.current = state;
    this.onChange?.(state, this);
  }
}

/** The circuit breakers of the tenants' providers, one per tenant and provider, shared by every connector that names it. */
export class CircuitRegistry {
  private readonly breakers = new Map<string, CircuitBreaker>();

  constructor(private readonly logger: { warn(obj: object, msg: string): void }) {}

  /** The circuit breaker of a tenant's provider, shared by every connector that names it. */
  breaker(tenant: string, provider: string, options?: Partial<CircuitOptions>): CircuitBreaker {
    const key = `${tenant}\u0000${provider}`;
    let breaker = this.breakers.get(key);
    if (!breaker) {
      breaker = new CircuitBreaker(provider, { ...DEFAULT_CIRCUIT, ...options }, (state) =>
        this.logger.warn({ tenant, provider, state }, `circuit of provider ${provider} is ${state}`),
      );
      this.breakers.set(key, breaker);
    }
    return breaker;
  }

  /** Every provider circuit, for metrics. */
  circuits(): Array<{ tenant: string; provider: string; state: string }> {
    return [...this.breakers].map(([key, b]) => {
      const [tenant, provider] = key.split('\u0000') as [string, string];
      return { tenant, provider, state: b.state };
    });
  }
}
