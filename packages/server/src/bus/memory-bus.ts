/**
 * In-process bus. A standalone node (the default) uses one on its own network: there are no other
 * nodes, so publishing costs nothing. Several servers in one process (tests) share a network to act
 * as a cluster. Fit for a single process only; several processes need the Redis, NATS or PostgreSQL bus.
 */
import { BaseBus } from './base-bus.ts';

export class MemoryBusNetwork {
  readonly members = new Set<MemoryBus>();
}

export class MemoryBus extends BaseBus {
  readonly kind = 'memory';

  constructor(
    node: string,
    private readonly network: MemoryBusNetwork = new MemoryBusNetwork(),
  ) {
    super(node);
    network.members.add(this);
  }

  protected send(wire: string): void {
    // Encoded like on a real broker (same size rule, no shared objects), and asynchronous, so no
    // caller depends on synchronous delivery.
    for (const member of this.network.members) {
      if (member !== this) queueMicrotask(() => member.receive(wire));
    }
  }

  override publish(...args: Parameters<BaseBus['publish']>): void {
    if (this.network.members.size >= 2) super.publish(...args);
  }

  async ping(): Promise<boolean> {
    return true;
  }

  async close(): Promise<void> {
    this.network.members.delete(this);
    this.forgetSubscribers();
  }
}
