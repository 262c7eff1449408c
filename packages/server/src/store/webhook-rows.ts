/**
 * Row <-> model mapping of the webhook tables, shared by the SQLite and PostgreSQL stores, and the
 * endpoint counter arithmetic both apply when a worker reports attempts.
 */
import type { DeliveryAttempt, DeliveryStatus, WebhookStatus } from '@syncbridge/protocol';
import { parseJson } from './rows.ts';
import { openJson, SecretBox } from './secret-box.ts';
import type { DeliveryRow, PlatformCounts, WebhookEndpoint, WebhookSecretEntry } from './webhook-types.ts';

type Num = number | string;
const num = (v: Num): number => Number(v);
const numOrNull = (v: Num | null): number | null => (v === null ? null : Number(v));

export const ENDPOINT_COLUMNS =
  'tenant, id, config, secrets, status, status_reason, total_calls, failed_calls, consecutive_failures, last_triggered_at, last_success_at, last_failure_at, created_at, updated_at';

export interface EndpointRow {
  tenant: string;
  id: string;
  config: unknown;
  secrets: unknown;
  status: string;
  status_reason: string | null;
  total_calls: Num;
  failed_calls: Num;
  consecutive_failures: Num;
  last_triggered_at: Num | null;
  last_success_at: Num | null;
  last_failure_at: Num | null;
  created_at: Num;
  updated_at: Num;
}

/** The settings kept as one JSON document (everything an API update may change but status/secret). */
export type EndpointConfig = Pick<
  WebhookEndpoint,
  | 'name'
  | 'platform'
  | 'url'
  | 'description'
  | 'eventTypes'
  | 'headers'
  | 'delivery'
  | 'rateLimit'
  | 'maxConcurrency'
>;

export function endpointConfig(e: WebhookEndpoint): EndpointConfig {
  const { name, platform, url, description, eventTypes, headers, delivery, rateLimit, maxConcurrency } = e;
  return { name, platform, url, description, eventTypes, headers, delivery, rateLimit, maxConcurrency };
}

/** An endpoint from its row; its secrets opened with `box` when they were stored sealed. */
export function endpointFromRow(row: EndpointRow, box?: SecretBox | null): WebhookEndpoint {
  const config = parseJson(row.config) as EndpointConfig;
  return {
    tenant: row.tenant,
    id: row.id,
    ...config,
    secrets: openJson(row.secrets, box) as WebhookSecretEntry[],
    status: row.status as WebhookStatus,
    statusReason: row.status_reason,
    totalCalls: num(row.total_calls),
    failedCalls: num(row.failed_calls),
    consecutiveFailures: num(row.consecutive_failures),
    lastTriggeredAt: numOrNull(row.last_triggered_at),
    lastSuccessAt: numOrNull(row.last_success_at),
    lastFailureAt: numOrNull(row.last_failure_at),
    createdAt: num(row.created_at),
    updatedAt: num(row.updated_at),
  };
}

export const DELIVERY_COLUMNS =
  'id, tenant, webhook_id, event_id, seq, event_type, platform, priority, body, status, attempts, budget_start, next_attempt_at, locked_until, locked_by, created_at, completed_at, last_status, last_error, last_duration_ms';

/** The columns a delivery is written with by its commit: a new one's, then its lease (`lease`, or none). */
export const COMMITTED_DELIVERY_COLUMNS =
  'id, tenant, webhook_id, event_id, seq, event_type, platform, priority, body, status, next_attempt_at, created_at, attempts, locked_until, locked_by';

/** The columns a new delivery is inserted with, in `newDeliveryValues` order. */
export const NEW_DELIVERY_COLUMNS =
  'id, tenant, webhook_id, event_id, seq, event_type, platform, priority, body, status, next_attempt_at, created_at';

export interface DeliveryDbRow {
  id: string;
  tenant: string;
  webhook_id: string;
  event_id: string;
  seq: Num;
  event_type: string;
  platform: string | null;
  priority: Num | null;
  body: string;
  status: string;
  attempts: Num;
  budget_start: Num;
  next_attempt_at: Num;
  locked_until: Num | null;
  locked_by: string | null;
  created_at: Num;
  completed_at: Num | null;
  last_status: Num | null;
  last_error: string | null;
  last_duration_ms: Num | null;
}

/** A delivery as stored; its body is opened when it was sealed (an event of a collection with sealed fields). */
export function deliveryFromRow(row: DeliveryDbRow, box?: SecretBox | null): DeliveryRow {
  return {
    id: row.id,
    tenant: row.tenant,
    webhookId: row.webhook_id,
    eventId: row.event_id,
    seq: num(row.seq),
    eventType: row.event_type,
    platform: row.platform,
    priority: numOrNull(row.priority),
    body: box && SecretBox.isSealed(row.body) ? box.open(row.body) : row.body,
    status: row.status as DeliveryStatus,
    attempts: num(row.attempts),
    budgetStart: num(row.budget_start),
    nextAttemptAt: num(row.next_attempt_at),
    lockedUntil: numOrNull(row.locked_until),
    lockedBy: row.locked_by,
    createdAt: num(row.created_at),
    completedAt: numOrNull(row.completed_at),
    lastStatus: numOrNull(row.last_status),
    lastError: row.last_error,
    lastDurationMs: numOrNull(row.last_duration_ms),
  };
}

export interface AttemptDbRow {
  delivery_id: string;
  attempt: Num;
  started_at: Num;
  duration_ms: Num;
  status_code: Num | null;
  error: string | null;
  success: number | boolean;
  response: string | null;
}

export function attemptFromRow(row: AttemptDbRow): DeliveryAttempt {
  return {
    attempt: num(row.attempt),
    startedAt: new Date(num(row.started_at)).toISOString(),
    durationMs: num(row.duration_ms),
    responseStatus: numOrNull(row.status_code),
    error: row.error,
    success: Boolean(row.success),
    responseBody: row.response,
  };
}

/** One platform's delivery counts as both drivers' `countsByPlatform` query returns them. */
export interface PlatformCountsRow {
  platform: string | null;
  pending: Num;
  failed: Num;
  in_flight: Num;
  oldest: Num | null;
  last_success: Num | null;
}

export function platformCountsFromRow(r: PlatformCountsRow): PlatformCounts {
  return {
    platform: r.platform,
    pending: num(r.pending),
    failed: num(r.failed),
    inFlight: num(r.in_flight),
    oldestPendingAt: numOrNull(r.oldest),
    lastSuccessAt: numOrNull(r.last_success),
  };
}
