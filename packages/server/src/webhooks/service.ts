/**
 * What the webhook REST routes do: register, change, pause, delete and rotate endpoints; list
 * deliveries with their attempts; retry one delivery; replay everything since a time. Every call is
 * scoped to one tenant. Changes go to the store first, then to the in-memory registry the outbox reads,
 * so an event committed after the answer is matched against the new settings.
 */
import { randomUUID } from 'node:crypto';
import type {
  Delivery,
  DeliveryStatus,
  Webhook,
  WebhookCreateRequest,
  WebhookStatus,
  WebhookUpdateRequest,
} from '@syncbridge/protocol';
import { SyncError } from '../core/errors.ts';
import type { Store } from '../store/types.ts';
import type { WebhookDispatcher } from './dispatcher.ts';
import { deliveryBody, eventMatches } from './matching.ts';
import { deliveryFor, type WebhookRegistry } from './registry.ts';
import { generateSecret, secretProblem } from './signing.ts';
import type { AddressPolicy } from './ssrf.ts';
import type { NewDelivery, WebhookEndpoint } from './types.ts';
import { deliveryView, webhookView } from './views.ts';

/** Headers syncbridge sets itself; an endpoint's extra headers may not replace them. */
const RESERVED_HEADERS = new Set([
  'content-type',
  'content-length',
  'host',
  'connection',
  'transfer-encoding',
  'user-agent',
  'x-webhook-signature',
  'x-event-id',
  'webhook-id',
  'webhook-timestamp',
  'webhook-signature',
]);

const MAX_ENDPOINTS_PER_TENANT = 1000;

export interface WebhookServiceOptions {
  store: Store;
  registry: WebhookRegistry;
  dispatcher: WebhookDispatcher;
  policy: AddressPolicy;
  defaultConcurrency: number;
}

function checkHeaders(headers: Record<string, string> | undefined | null): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [name, value] of Object.entries(headers ?? {})) {
    if (RESERVED_HEADERS.has(name.toLowerCase())) {
      throw new SyncError('BAD_REQUEST', `header ${name} is set by syncbridge and cannot be replaced`);
    }
    out[name] = value;
  }
  return out;
}

function checkSecret(secret: string): string {
  const problem = secretProblem(secret);
  if (problem) throw new SyncError('BAD_REQUEST', `secret: ${problem}`);
  return secret;
}

export class WebhookService {
  constructor(private readonly o: WebhookServiceOptions) {}

  private async load(tenant: string, id: string): Promise<WebhookEndpoint> {
    const e = await this.o.store.webhooks.getEndpoint(tenant, id);
    if (!e) throw new SyncError('NOT_FOUND', `no webhook ${id}`);
    return e;
  }

  async create(tenant: string, body: WebhookCreateRequest): Promise<Webhook> {
    if (body.secret !== undefined && body.secretKey !== undefined && body.secret !== body.secretKey) {
      throw new SyncError('BAD_REQUEST', 'give the secret once (secret or secretKey)');
    }
    if (this.o.registry.list(tenant).length >= MAX_ENDPOINTS_PER_TENANT) {
      throw new SyncError('CONFLICT', `a tenant may register at most ${MAX_ENDPOINTS_PER_TENANT} webhooks`);
    }
    const url = await this.o.policy.checkUrl(body.url);
    const now = Date.now();
    const endpoint: WebhookEndpoint = {
      tenant,
      id: `wh_${randomUUID().replaceAll('-', '').slice(0, 20)}`,
      name: body.name,
      platform: body.platform ?? null,
      url: url.href,
      description: body.description ?? null,
      eventTypes: body.eventTypes,
      headers: checkHeaders(body.headers),
      delivery: body.delivery ?? 'parallel',
      rateLimit: body.rateLimit ?? null,
      maxConcurrency: body.maxConcurrency ?? this.o.defaultConcurrency,
      secrets: [{ secret: checkSecret(body.secret ?? body.secretKey ?? generateSecret()) }],
      status: body.status ?? 'active',
      statusReason: null,
      totalCalls: 0,
      failedCalls: 0,
      consecutiveFailures: 0,
      lastTriggeredAt: null,
      lastSuccessAt: null,
      lastFailureAt: null,
      createdAt: now,
      updatedAt: now,
    };
    await this.o.store.webhooks.insertEndpoint(endpoint);
    this.o.registry.put(endpoint);
    return webhookView(endpoint, true, now);
  }

  async list(tenant: string, filter: { platform?: string; status?: WebhookStatus }): Promise<Webhook[]> {
    const all = await this.o.store.webhooks.listEndpoints(tenant);
    const now = Date.now();
    return all
      .filter((e) => filter.platform === undefined || e.platform === filter.platform)
      .filter((e) => filter.status === undefined || e.status === filter.status)
      .map((e) => webhookView(e, false, now));
  }

  async get(tenant: string, id: string): Promise<Webhook> {
    return webhookView(await this.load(tenant, id));
  }

  private async save(e: WebhookEndpoint): Promise<void> {
    await this.o.store.webhooks.updateEndpoint(e);
    const saved = (await this.o.store.webhooks.getEndpoint(e.tenant, e.id)) ?? e;
    this.o.registry.put(saved);
  }

  async update(tenant: string, id: string, patch: WebhookUpdateRequest): Promise<Webhook> {
    const e = await this.load(tenant, id);
    if (patch.url !== undefined) e.url = (await this.o.policy.checkUrl(patch.url)).href;
    if (patch.name !== undefined) e.name = patch.name;
    if (patch.platform !== undefined) e.platform = patch.platform;
    if (patch.description !== undefined) e.description = patch.description;
    if (patch.eventTypes !== undefined) e.eventTypes = patch.eventTypes;
    if (patch.headers !== undefined) e.headers = checkHeaders(patch.headers);
    if (patch.delivery !== undefined) e.delivery = patch.delivery;
    if (patch.rateLimit !== undefined) e.rateLimit = patch.rateLimit;
    if (patch.maxConcurrency !== undefined) e.maxConcurrency = patch.maxConcurrency;
    e.updatedAt = Date.now();
    await this.save(e);
    this.o.dispatcher.touch([e]);
    return this.get(tenant, id);
  }

  async setStatus(tenant: string, id: string, status: WebhookStatus): Promise<Webhook> {
    const e = await this.load(tenant, id);
    if (e.status !== status) {
      e.status = status;
      e.statusReason = status === 'disabled' ? 'disabled by a tenant admin' : null;
      e.updatedAt = Date.now();
      await this.save(e);
      if (status === 'active') this.o.dispatcher.touch([e]);
    }
    return this.get(tenant, id);
  }

  async remove(tenant: string, id: string): Promise<void> {
    if (!(await this.o.store.webhooks.deleteEndpoint(tenant, id))) {
      throw new SyncError('NOT_FOUND', `no webhook ${id}`);
    }
    this.o.registry.remove(tenant, id);
  }

  /** A new current secret; the previous one keeps signing for `overlapSeconds`. */
  async rotateSecret(
    tenant: string,
    id: string,
    body: { secret?: string; overlapSeconds?: number },
  ): Promise<Webhook> {
    const e = await this.load(tenant, id);
    const now = Date.now();
    const overlap = (body.overlapSeconds ?? 86_400) * 1000;
    const previous = e.secrets[0];
    const kept = e.secrets.slice(1).filter((s) => s.expiresAt !== undefined && s.expiresAt > now);
    e.secrets = [
      { secret: checkSecret(body.secret ?? generateSecret()) },
      ...(previous && overlap > 0 ? [{ secret: previous.secret, expiresAt: now + overlap }] : []),
      ...kept,
    ];
    e.updatedAt = now;
    await this.save(e);
    return webhookView((await this.o.store.webhooks.getEndpoint(tenant, id)) ?? e, true, now);
  }

  async deliveries(
    tenant: string,
    id: string,
    query: { status?: DeliveryStatus; limit: number; attempts: boolean },
  ): Promise<Delivery[]> {
    const e = await this.load(tenant, id);
    const rows = await this.o.store.webhooks.listDeliveries(tenant, id, query);
    const attempts = query.attempts
      ? await this.o.store.webhooks.listAttempts(
          tenant,
          rows.map((r) => r.id),
        )
      : null;
    const now = Date.now();
    return rows.map((r) => deliveryView(r, e.url, now, attempts?.get(r.id) ?? undefined));
  }

  async delivery(tenant: string, id: string, deliveryId: string): Promise<Delivery> {
    const e = await this.load(tenant, id);
    const row = await this.o.store.webhooks.getDelivery(tenant, id, deliveryId);
    if (!row) throw new SyncError('NOT_FOUND', `no delivery ${deliveryId} of webhook ${id}`);
    const attempts = await this.o.store.webhooks.listAttempts(tenant, [deliveryId]);
    return deliveryView(row, e.url, Date.now(), attempts.get(deliveryId) ?? []);
  }

  /** Sends one delivery again now (a dead letter, or a success to send twice), with a fresh retry budget. */
  async retry(tenant: string, id: string, deliveryId: string): Promise<Delivery> {
    const e = await this.load(tenant, id);
    const row = await this.o.store.webhooks.getDelivery(tenant, id, deliveryId);
    if (!row) throw new SyncError('NOT_FOUND', `no delivery ${deliveryId} of webhook ${id}`);
    if (!(await this.o.store.webhooks.retryDelivery(tenant, id, deliveryId, Date.now()))) {
      throw new SyncError('CONFLICT', `delivery ${deliveryId} is being sent right now`);
    }
    this.o.dispatcher.touch([e]);
    return this.delivery(tenant, id, deliveryId);
  }

  /**
   * Queues again every event of the log from `since` (to `until`) that this endpoint receives: new
   * deliveries for events it never got a delivery of (it was disabled, or registered later), and a fresh
   * retry budget for existing ones that are not pending (only the failed ones if `onlyFailed`).
   */
  async replay(
    tenant: string,
    id: string,
    body: { since: string; until?: string; onlyFailed?: boolean },
  ): Promise<number> {
    const e = await this.load(tenant, id);
    if (body.until !== undefined && Date.parse(body.until) <= Date.parse(body.since)) {
      throw new SyncError('BAD_REQUEST', 'until must be after since');
    }
    const since = new Date(body.since).toISOString();
    const until = body.until === undefined ? undefined : new Date(body.until).toISOString();
    let afterSeq = 0;
    let queued = 0;
    for (;;) {
      const events = await this.o.store.readEvents(tenant, { afterSeq, limit: 1000, from: since, to: until });
      const now = Date.now();
      const batch: NewDelivery[] = [];
      for (const event of events) {
        if (eventMatches(e, event)) batch.push(deliveryFor(e, event, deliveryBody(tenant, event), now));
      }
      if (batch.length > 0) {
        queued += await this.o.store.webhooks.replay({
          deliveries: batch,
          now,
          onlyFailed: body.onlyFailed ?? false,
        });
      }
      if (events.length < 1000) break;
      afterSeq = events[events.length - 1]!.seq;
    }
    if (queued > 0) this.o.dispatcher.touch([e]);
    return queued;
  }
}
