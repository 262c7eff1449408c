/** A market feed the tests drive: a connector whose `tick` is a price as an upstream market sends it. */
import type { Tick } from '@syncbridge/client';
import type { Connector, ConnectorContext, ConnectorHealth } from '../../server/src/connectors/types.ts';

export class TestFeed implements Connector {
  readonly kind = 'test-feed';
  readonly name = 'fx';
  private ctx: ConnectorContext | null = null;

  constructor(readonly tenant: string) {}

  async start(ctx: ConnectorContext): Promise<void> {
    this.ctx = ctx;
    await ctx.topics.declare('prices');
  }
  tick(symbol: string, price: number): Tick {
    return this.ctx!.topics.tick('prices', { symbol, price });
  }
  health(): ConnectorHealth {
    return {
      state: this.ctx ? 'running' : 'stopped',
      lastSuccessAt: null,
      lastError: null,
      stalenessMs: null,
      stale: false,
    };
  }
  metrics(): Record<string, number> {
    return {};
  }
  stop(): void {
    this.ctx = null;
  }
}
