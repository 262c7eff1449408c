/**
 * The endpoints of every tenant, in memory, so the outbox can decide inside the log transaction,
 * without a query, which deliveries each commit causes. Loaded at start, changed by this node's API
 * calls and worker as they change the store, and reloaded periodically for changes made by other nodes.
 */
import { randomUUID } from 'node:crypto';
import type { LogEvent } from '@syncbridge/protocol';
import { deliveryBody, eventMatches, webhookEventType } from './matching.ts';
import type { NewDelivery, WebhookEndpoint, WebhookStore } from './types.ts';

export function newDeliveryId(): string {
  return `dlv_${randomUUID().replaceAll('-', '')}`;
}

export class WebhookRegistry {
  private byTenant = new Map<string, Map<string, WebhookEndpoint>>();
  /** Bumped by every local change, so a reload that raced with one does not undo it. */
  private version = 0;
  /** Per tenant, the stored endpoint version (`tenant_heads.hooks_version`) this registry reflects. */
  private readonly seen = new Map<string, number>();

  constructor(private readonly store: WebhookStore) {}

  async load(): Promise<void> {
    const before = this.version;
    const all = await this.store.listAllEndpoints();
    if (this.version !== before) return;
    const next = new Map<string, Map<string, WebhookEndpoint>>();
    for (const e of all) {
      let tenant = next.get(e.tenant);
      if (!tenant) {
        tenant = new Map();
        next.set(e.tenant, tenant);
      }
      tenant.set(e.id, e);
    }
    this.byTenant = next;
  }

  /**
   * Makes the tenant's endpoints current for a commit that read `hooksVersion` under the tenant's write
   * lock: when it differs from the version last read here, the tenant's endpoints are read again (they
   * committed before the lock was granted, so the read sees them). A write lock costs no query otherwise.
   */
  async sync(tenant: string, hooksVersion: number): Promise<void> {
    if ((this.seen.get(tenant) ?? 0) === hooksVersion) return;
    const endpoints = await this.store.listEndpoints(tenant);
    this.version += 1;
    this.byTenant.set(tenant, new Map(endpoints.map((e) => [e.id, e])));
    this.seen.set(tenant, hooksVersion);
  }

  put(endpoint: WebhookEndpoint): void {
    this.version += 1;
    let tenant = this.byTenant.get(endpoint.tenant);
    if (!tenant) {
      tenant = new Map();
      this.byTenant.set(endpoint.tenant, tenant);
    }
    tenant.set(endpoint.id, endpoint);
  }

  remove(tenant: string, id: string): void {
    this.version += 1;
    this.byTenant.get(tenant)?.delete(id);
  }

  get(tenant: string, id: string): WebhookEndpoint | undefined {
    return this.byTenant.get(tenant)?.get(id);
  }

  list(tenant: string): WebhookEndpoint[] {
    return [...(this.byTenant.get(tenant)?.values() ?? [])];
  }

  *all(): Iterable<WebhookEndpoint> {
    for (const tenant of this.byTenant.values()) yield* tenant.values();
  }

  /** The deliveries a commit's events cause: one per receiving endpoint (active or paused) and event. */
  plan(tenant: string, events: readonly LogEvent[]): NewDelivery[] {
    const endpoints = this.byTenant.get(tenant);
    if (!endpoints || endpoints.size === 0) return [];
    const out: NewDelivery[] = [];
    const now = Date.now();
    for (const event of events) {
      let body: string | undefined;
      for (const e of endpoints.values()) {
        if (e.status === 'disabled' || !eventMatches(e, event)) continue;
        body ??= deliveryBody(tenant, event);
        out.push(deliveryFor(e, event, body, now));
      }
    }
    return out;
  }
}

export function deliveryFor(e: WebhookEndpoint, event: LogEvent, body: string, now: number): NewDelivery {
  return {
    id: newDeliveryId(),
    tenant: e.tenant,
    webhookId: e.id,
    eventId: event.eventId,
    seq: event.seq,
    eventType: webhookEventType(event),
    platform: e.platform,
    priority: event.priority ?? null,
    body,
    createdAt: now,
  };
}
