/**
 * Row <-> model mapping of the webhook tables, shared by the SQLite and PostgreSQL stores, and the
 * endpoint counter arithmetic both apply when a worker reports attempts.
 */
import type { DeliveryAttempt, DeliveryStatus, WebhookStatus } from '@syncbridge/protocol';
import { parseJson } from '../store/rows.ts';
import { openJson, type SecretBox } from '../store/secret-box.ts';
import type { AttemptResult, DeliveryRow, WebhookEndpoint, WebhookSecretEntry } from './types.ts';

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

export function deliveryFromRow(row: DeliveryDbRow): DeliveryRow {
  return {
    id: row.id,
    tenant: row.tenant,
    webhookId: row.webhook_id,
    eventId: row.event_id,
    seq: num(row.seq),
    eventType: row.event_type,
    platform: row.platform,
    priority: numOrNull(row.priority),
    body: row.body,
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

/** How a batch of attempt results changes one endpoint's counters. */
export interface CounterDelta {
  tenant: string;
  webhookId: string;
  calls: number;
  failed: number;
  /** The streak restarts from `consecutive` (a success came in this batch), else grows by it. */
  reset: boolean;
  consecutive: number;
  succeededAt: number | null;
  failedAt: number | null;
  /** A 410 asked to disable the endpoint. */
  disable: string | null;
}

/** Folds attempt results (in the order they finished) into one counter change per endpoint. */
export function counterDeltas(results: AttemptResult[], now: number): CounterDelta[] {
  const byEndpoint = new Map<string, CounterDelta>();
  for (const r of results) {
    const key = `${r.tenant}\u0000${r.webhookId}`;
    let d = byEndpoint.get(key);
    if (!d) {
      d = {
        tenant: r.tenant,
        webhookId: r.webhookId,
        calls: 0,
        failed: 0,
        reset: false,
        consecutive: 0,
        succeededAt: null,
        failedAt: null,
        disable: null,
      };
      byEndpoint.set(key, d);
    }
    d.calls += 1;
    if (r.success) {
      d.reset = true;
      d.consecutive = 0;
      d.succeededAt = now;
    } else {
      d.failed += 1;
      d.failedAt = now;
      if (r.countsAsFailure) d.consecutive += 1;
    }
    if (r.disable) d.disable = r.disable;
  }
  return [...byEndpoint.values()];
}
