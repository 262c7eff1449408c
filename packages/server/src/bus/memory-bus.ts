/**
 * In-process bus. A standalone node (the default) uses one on its own network: there are no other
 * nodes, so publishing costs nothing. Several servers in one process (tests) share a network to act
 * as a cluster. Fit for a single process only; several processes need the Redis or NATS bus.
 */
import { type Bus, type BusHandler, type BusMessage, decodeBusMessage, encodeBusMessage } from './types.ts';

export class MemoryBusNetwork {
  readonly members = new Set<MemoryBus>();
}

export class MemoryBus implements Bus {
  readonly kind = 'memory';
  private readonly handlers: BusHandler[] = [];

  constructor(
    private readonly node: string,
    private readonly network: MemoryBusNetwork = new MemoryBusNetwork(),
  ) {
    network.members.add(this);
  }

  publish(message: BusMessage): void {
    if (this.network.members.size < 2) return;
    // Encoded like on a real broker (same size rule, no shared objects), and asynchronous, so no
    // caller depends on synchronous delivery.
    const wire = encodeBusMessage(message);
    for (const member of this.network.members) {
      if (member === this) continue;
      queueMicrotask(() => {
        const received = decodeBusMessage(wire);
        if (received) for (const handler of member.handlers) handler(received);
      });
    }
  }

  subscribe(handler: BusHandler): void {
    this.handlers.push(handler);
  }

  onReconnect(): void {}

  async ping(): Promise<boolean> {
    return true;
  }

  async close(): Promise<void> {
    this.network.members.delete(this);
    this.handlers.length = 0;
  }

  get nodeId(): string {
    return this.node;
  }
}
