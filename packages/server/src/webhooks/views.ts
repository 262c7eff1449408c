/** The REST shapes of endpoints and deliveries (protocol/webhooks.ts), from their stored form. */
import type { Delivery, DeliveryAttempt, Webhook } from '@syncbridge/protocol';
import { maskSecret } from './signing.ts';
import type { DeliveryRow, WebhookEndpoint } from './types.ts';

const iso = (ms: number | null): string | null => (ms === null ? null : new Date(ms).toISOString());

/** An endpoint as the API shows it: the secret masked unless `revealSecret` (creation, rotation). */
export function webhookView(e: WebhookEndpoint, revealSecret = false, now = Date.now()): Webhook {
  const current = e.secrets[0]?.secret ?? '';
  const previous = e.secrets.slice(1).find((s) => s.expiresAt !== undefined && s.expiresAt > now);
  return {
    id: e.id,
    name: e.name,
    platform: e.platform,
    url: e.url,
    description: e.description,
    eventTypes: e.eventTypes,
    headers: e.headers,
    delivery: e.delivery,
    rateLimit: e.rateLimit,
    maxConcurrency: e.maxConcurrency,
    status: e.status,
    statusReason: e.statusReason,
    secret: revealSecret ? current : maskSecret(current),
    previousSecretExpiresAt: previous ? iso(previous.expiresAt!) : null,
    totalCalls: e.totalCalls,
    failedCalls: e.failedCalls,
    consecutiveFailures: e.consecutiveFailures,
    lastTriggered: iso(e.lastTriggeredAt),
    lastSuccessAt: iso(e.lastSuccessAt),
    lastFailureAt: iso(e.lastFailureAt),
    createdAt: iso(e.createdAt)!,
    updatedAt: iso(e.updatedAt)!,
  };
}

export function deliveryView(
  d: DeliveryRow,
  url: string,
  now: number,
  attempts?: DeliveryAttempt[],
): Delivery {
  const inFlight = d.status === 'pending' && d.lockedUntil !== null && d.lockedUntil > now;
  const view: Delivery = {
    id: d.id,
    webhookId: d.webhookId,
    eventId: d.eventId,
    eventType: d.eventType,
    seq: d.seq,
    platform: d.platform,
    url,
    status: d.status,
    inFlight,
    attempts: d.attempts,
    retryCount: Math.max(0, d.attempts - 1),
    responseStatus: d.lastStatus,
    durationMs: d.lastDurationMs,
    error: d.lastError,
    createdAt: iso(d.createdAt)!,
    deliveredAt: d.status === 'success' ? iso(d.completedAt) : null,
    nextAttemptAt: d.status === 'pending' && !inFlight ? iso(d.nextAttemptAt) : null,
  };
  if (attempts) view.attemptLog = attempts;
  return view;
}
