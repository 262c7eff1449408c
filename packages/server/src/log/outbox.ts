/**
 * The Outbox port: what the write path needs from webhooks, defined here beside its user so the log
 * never imports webhooks (webhooks/system.ts implements it). It must never carry a driver type.
 */
import type { LogEvent } from '@syncbridge/protocol';
import type { NewDelivery } from '../store/types.ts';

/**
 * The write path's hook into webhooks: `plan` runs inside the log transaction (synchronously, from
 * memory) and names the deliveries the committed events cause; they are written in that same
 * transaction. `committed` hears them once the transaction has committed.
 */
export interface Outbox {
  /**
   * Called with the tenant's endpoint version read under its write lock, before `plan`: reloads the
   * tenant's endpoints when another node (or this one) changed them since this node last read them.
   */
  sync(tenant: string, hooksVersion: number): Promise<void>;
  plan(tenant: string, events: readonly LogEvent[]): NewDelivery[];
  committed(deliveries: NewDelivery[]): void;
}
