/**
 * In-process bus: delivers synchronously to the handlers of this process. Fit for a single standalone
 * node (the default); several nodes need the Redis or NATS bus.
 */
import type { LogEvent } from '@syncbridge/protocol';
import type { Bus, BusHandler } from './types.ts';

export class MemoryBus implements Bus {
  readonly kind = 'memory';
  private readonly handlers: BusHandler[] = [];

  publish(tenant: string, events: LogEvent[]): void {
    for (const handler of this.handlers) handler(tenant, events);
  }

  subscribe(handler: BusHandler): void {
    this.handlers.push(handler);
  }

  async close(): Promise<void> {
    this.handlers.length = 0;
  }
}
