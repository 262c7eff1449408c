/**
 * The Outbox port: what the write path needs from webhooks, defined here beside its user so the log
 * never imports webhooks (webhooks/system.ts implements it), and the view of it one commit batch uses.
 * It must never carry a driver type.
 */
import type { LogEvent } from '@syncbridge/protocol';
import type { NewDelivery } from '../store/types.ts';

/**
 * The write path's hook into webhooks: `plan` runs inside the log transaction (synchronously, from
 * memory) and names the deliveries the committed events cause; they are written in that same
 * transaction. `committed` hears them once the transaction has committed; `abandoned` hears those
 * planned by a transaction that did not commit (failed, or computed again), which are not written.
 */
export interface Outbox {
  /**
   * Called with the tenant's endpoint version read under its write lock, before `plan`: reloads the
   * tenant's endpoints when another node (or this one) changed them since this node last read them.
   */
  sync(tenant: string, hooksVersion: number): Promise<void>;
  plan(tenant: string, events: readonly LogEvent[]): NewDelivery[];
  committed(deliveries: NewDelivery[]): void;
  abandoned(deliveries: NewDelivery[]): void;
}

/**
 * The outbox as one batch's transactions see it: remembers every delivery planned, so that those not
 * in the commits that happened are handed to `abandoned` (a failed transaction, or a tenant's commit
 * computed again after its state moved).
 */
export function plannedBy(outbox: Outbox): {
  port: Outbox;
  settle: (settled: readonly { deliveries: NewDelivery[] }[]) => void;
} {
  const planned: NewDelivery[] = [];
  const port: Outbox = {
    sync: (tenant, hooksVersion) => outbox.sync(tenant, hooksVersion),
    plan: (tenant, events) => {
      const deliveries = outbox.plan(tenant, events);
      for (const d of deliveries) planned.push(d);
      return deliveries;
    },
    committed: (deliveries) => outbox.committed(deliveries),
    abandoned: (deliveries) => outbox.abandoned(deliveries),
  };
  const settle = (settled: readonly { deliveries: NewDelivery[] }[]) => {
    if (planned.length === 0) return;
    const written = new Set<NewDelivery>();
    for (const s of settled) for (const d of s.deliveries) written.add(d);
    const lost = planned.filter((d) => !written.has(d));
    if (lost.length > 0) outbox.abandoned(lost);
  };
  return { port, settle };
}
