/**
 * The webhook tables on PostgreSQL (see ../webhook-types.ts for the contract). Batches use unnest
 * arrays, one statement per kind of row. Claims take `FOR UPDATE SKIP LOCKED` rows, so several nodes
 * can share the outbox without waiting on each other or sending a delivery twice while its lease holds.
 */

import type { DeliveryAttempt } from '@syncbridge/protocol';
import { type SecretBox, sealJson } from '../secret-box.ts';
import {
  type AttemptDbRow,
  attemptFromRow,
  COMMITTED_DELIVERY_COLUMNS,
  DELIVERY_COLUMNS,
  type DeliveryDbRow,
  deliveryFromRow,
  ENDPOINT_COLUMNS,
  type EndpointRow,
  endpointConfig,
  endpointFromRow,
  NEW_DELIVERY_COLUMNS,
} from '../webhook-rows.ts';
import type {
  DeliveryQuery,
  DeliveryRow,
  LedgerTransaction,
  NewDelivery,
  ReplayInput,
  WebhookEndpoint,
  WebhookStore,
} from '../webhook-types.ts';
import { PostgresWebhookReports } from './webhook-reports.ts';

export type QueryFn = <R extends object>(sql: string, params?: unknown[]) => Promise<R[]>;

export interface PostgresAccess {
  /** Seals the endpoints' secrets at rest when set. */
  secretBox?: SecretBox | null;
  query: QueryFn;
  /** Runs fn in one READ COMMITTED transaction on one pooled connection. */
  transaction<T>(fn: (query: QueryFn) => Promise<T>): Promise<T>;
}

const NEW_DELIVERY_TYPES = [
  'text',
  'text',
  'text',
  'text',
  'bigint',
  'text',
  'text',
  'integer',
  'text',
  'text',
  'bigint',
  'bigint',
];
const UNNEST_NEW = `unnest(${NEW_DELIVERY_TYPES.map((t, i) => `$${i + 1}::${t}[]`).join(', ')})`;
const UNNEST_COMMITTED = `unnest(${[...NEW_DELIVERY_TYPES, 'integer', 'bigint', 'text'].map((t, i) => `$${i + 1}::${t}[]`).join(', ')})`;
const INSERT_DELIVERIES = `INSERT INTO webhook_deliveries (${COMMITTED_DELIVERY_COLUMNS}) SELECT * FROM ${UNNEST_COMMITTED}`;
const REPLAY_DELIVERIES = `INSERT INTO webhook_deliveries AS d (${NEW_DELIVERY_COLUMNS}) SELECT * FROM ${UNNEST_NEW}
  ON CONFLICT (tenant, webhook_id, event_id) DO UPDATE SET status = 'pending',
    next_attempt_at = excluded.next_attempt_at, budget_start = d.attempts, completed_at = NULL
  WHERE d.status <> 'pending' AND (NOT $13::boolean OR d.status <> 'success')`;

function newDeliveryArrays(deliveries: NewDelivery[]): unknown[][] {
  const cols: unknown[][] = Array.from({ length: 12 }, () => []);
  for (const d of deliveries) {
    const row = [
      d.id,
      d.tenant,
      d.webhookId,
      d.eventId,
      d.seq,
      d.eventType,
      d.platform,
      d.priority,
      d.body,
      'pending',
      d.createdAt,
      d.createdAt,
    ];
    for (let i = 0; i < 12; i++) cols[i]!.push(row[i]);
  }
  return cols;
}

/** The outbox insert, on the log transaction's connection; a delivery with a `lease` is written leased. */
export async function insertDeliveries(query: QueryFn, deliveries: NewDelivery[]): Promise<void> {
  if (deliveries.length === 0) return;
  await query(INSERT_DELIVERIES, [
    ...newDeliveryArrays(deliveries),
    deliveries.map((d) => (d.lease ? 1 : 0)),
    deliveries.map((d) => d.lease?.until ?? null),
    deliveries.map((d) => d.lease?.node ?? null),
  ]);
}

/**
 * An endpoint change bumps its tenant's `hooks_version` first, taking the tenant's head row lock in the
 * order commits take it (head row, then deliveries): a commit that locks the tenant after this change
 * commits sees the new version and plans its deliveries against the changed endpoints.
 */
async function bumpHooksVersion(q: QueryFn, tenant: string): Promise<void> {
  await q(
    `INSERT INTO tenant_heads (tenant, seq, hooks_version) VALUES ($1, 0, 1)
     ON CONFLICT (tenant) DO UPDATE SET hooks_version = tenant_heads.hooks_version + 1`,
    [tenant],
  );
}

/** The ledger's primitives on one transaction's connection. */
function ledgerTransaction(q: QueryFn, box: SecretBox | null | undefined): LedgerTransaction {
  return {
    recordAttempts: async (results, now) => {
      await q(
        `INSERT INTO webhook_attempts (delivery_id, attempt, tenant, webhook_id, started_at, duration_ms,
             status_code, error, success, response)
           SELECT * FROM unnest($1::text[], $2::integer[], $3::text[], $4::text[], $5::bigint[], $6::integer[],
             $7::integer[], $8::text[], $9::boolean[], $10::text[])
           ON CONFLICT (delivery_id, attempt) DO NOTHING`,
        [
          results.map((r) => r.deliveryId),
          results.map((r) => r.attempt),
          results.map((r) => r.tenant),
          results.map((r) => r.webhookId),
          results.map((r) => r.startedAt),
          results.map((r) => r.durationMs),
          results.map((r) => r.statusCode),
          results.map((r) => r.error),
          results.map((r) => r.success),
          results.map((r) => r.responseBody),
        ],
      );
      await q(
        `UPDATE webhook_deliveries d SET status = u.status, next_attempt_at = coalesce(u.next_at, d.next_attempt_at),
             locked_until = NULL, locked_by = NULL, completed_at = u.completed, last_status = u.code,
             last_error = u.err, last_duration_ms = u.dur
           FROM unnest($1::text[], $2::text[], $3::text[], $4::bigint[], $5::bigint[], $6::integer[], $7::text[],
             $8::integer[], $9::integer[]) AS u(tenant, id, status, next_at, completed, code, err, dur, attempt)
           WHERE d.tenant = u.tenant AND d.id = u.id AND d.status = 'pending' AND d.attempts = u.attempt`,
        [
          results.map((r) => r.tenant),
          results.map((r) => r.deliveryId),
          results.map((r) => r.next.status),
          results.map((r) => (r.next.status === 'pending' ? r.next.at : null)),
          results.map((r) => (r.next.status === 'pending' ? null : now)),
          results.map((r) => r.statusCode),
          results.map((r) => r.error),
          results.map((r) => r.durationMs),
          // A late answer to an attempt whose lease ran out, after another node claimed the delivery
          // again, is logged but must not end or unlock that newer attempt.
          results.map((r) => r.attempt),
        ],
      );
    },
    addCounters: async (d, now) => {
      await q(
        `UPDATE webhooks SET total_calls = total_calls + $3, failed_calls = failed_calls + $4,
           consecutive_failures = CASE WHEN $5::boolean THEN $6 ELSE consecutive_failures + $6 END,
           last_triggered_at = $7, last_success_at = coalesce($8, last_success_at),
           last_failure_at = coalesce($9, last_failure_at)
         WHERE tenant = $1 AND id = $2`,
        [d.tenant, d.webhookId, d.calls, d.failed, d.reset, d.consecutive, now, d.succeededAt, d.failedAt],
      );
    },
    disable: async (tenant, id, reason, now) => {
      const rows = await q(
        `UPDATE webhooks SET status = 'disabled', status_reason = $3, updated_at = $4
         WHERE tenant = $1 AND id = $2 AND status <> 'disabled' RETURNING id`,
        [tenant, id, reason, now],
      );
      return rows.length > 0;
    },
    disableFailing: async (tenant, id, reason, now, threshold) => {
      const rows = await q(
        `UPDATE webhooks SET status = 'disabled', status_reason = $3, updated_at = $4
         WHERE tenant = $1 AND id = $2 AND status = 'active' AND consecutive_failures >= $5 RETURNING id`,
        [tenant, id, reason, now, threshold],
      );
      return rows.length > 0;
    },
    // The head is read without a row lock and claimed only if still free: taking the next row
    // (SKIP LOCKED) while another node holds the head would break the order.
    claimHead: async (c, lease) => {
      const rows = await q<DeliveryDbRow>(
        `WITH head AS (SELECT id, next_attempt_at FROM webhook_deliveries
           WHERE tenant = $3 AND webhook_id = $4 AND status = 'pending' ORDER BY seq LIMIT 1)
         UPDATE webhook_deliveries d SET locked_until = $1, locked_by = $2, attempts = d.attempts + 1
         FROM head WHERE d.id = head.id AND head.next_attempt_at <= $5 AND d.status = 'pending'
           AND (d.locked_until IS NULL OR d.locked_until <= $5)
         RETURNING ${prefixed('d')}`,
        [lease.until, lease.node, c.tenant, c.webhookId, lease.now],
      );
      return rows[0] ? deliveryFromRow(rows[0], box) : null;
    },
    claimDue: async (c, lease) => {
      const rows = await q<DeliveryDbRow>(
        `UPDATE webhook_deliveries d SET locked_until = $1, locked_by = $2, attempts = d.attempts + 1
         WHERE d.id IN (SELECT id FROM webhook_deliveries
           WHERE tenant = $3 AND webhook_id = $4 AND status = 'pending' AND next_attempt_at <= $5
             AND (locked_until IS NULL OR locked_until <= $5)
           ORDER BY seq LIMIT $6 FOR UPDATE SKIP LOCKED)
         RETURNING ${prefixed('d')}`,
        [lease.until, lease.node, c.tenant, c.webhookId, lease.now, c.limit],
      );
      return rows.map((r) => deliveryFromRow(r, box));
    },
  };
}

export class PostgresWebhookStore extends PostgresWebhookReports implements WebhookStore {
  constructor(db: PostgresAccess) {
    super(db);
  }

  async listAllEndpoints(): Promise<WebhookEndpoint[]> {
    const rows = await this.db.query<EndpointRow>(
      `SELECT ${ENDPOINT_COLUMNS} FROM webhooks ORDER BY tenant, created_at`,
    );
    return rows.map((row) => endpointFromRow(row, this.db.secretBox));
  }

  async listEndpoints(tenant: string): Promise<WebhookEndpoint[]> {
    const rows = await this.db.query<EndpointRow>(
      `SELECT ${ENDPOINT_COLUMNS} FROM webhooks WHERE tenant = $1 ORDER BY created_at, id`,
      [tenant],
    );
    return rows.map((row) => endpointFromRow(row, this.db.secretBox));
  }

  async getEndpoint(tenant: string, id: string): Promise<WebhookEndpoint | null> {
    const rows = await this.db.query<EndpointRow>(
      `SELECT ${ENDPOINT_COLUMNS} FROM webhooks WHERE tenant = $1 AND id = $2`,
      [tenant, id],
    );
    return rows[0] ? endpointFromRow(rows[0], this.db.secretBox) : null;
  }

  async insertEndpoint(e: WebhookEndpoint): Promise<void> {
    await this.db.transaction(async (q) => {
      await bumpHooksVersion(q, e.tenant);
      await q(
        `INSERT INTO webhooks (tenant, id, config, secrets, status, status_reason, created_at, updated_at)
       VALUES ($1, $2, $3::jsonb, $4::jsonb, $5, $6, $7, $8)`,
        [
          e.tenant,
          e.id,
          JSON.stringify(endpointConfig(e)),
          sealJson(e.secrets, this.db.secretBox),
          e.status,
          e.statusReason,
          e.createdAt,
          e.updatedAt,
        ],
      );
    });
  }

  async updateEndpoint(e: WebhookEndpoint): Promise<void> {
    await this.db.transaction(async (q) => {
      await bumpHooksVersion(q, e.tenant);
      await q(
        `UPDATE webhooks SET config = $3::jsonb, secrets = $4::jsonb, status = $5, status_reason = $6,
         updated_at = $7,
         consecutive_failures = CASE WHEN $5 = 'active' AND status <> 'active' THEN 0 ELSE consecutive_failures END
       WHERE tenant = $1 AND id = $2`,
        [
          e.tenant,
          e.id,
          JSON.stringify(endpointConfig(e)),
          sealJson(e.secrets, this.db.secretBox),
          e.status,
          e.statusReason,
          e.updatedAt,
        ],
      );
    });
  }

  async deleteEndpoint(tenant: string, id: string): Promise<boolean> {
    return this.db.transaction(async (q) => {
      await bumpHooksVersion(q, tenant);
      await q('DELETE FROM webhook_attempts WHERE tenant = $1 AND webhook_id = $2', [tenant, id]);
      await q('DELETE FROM webhook_deliveries WHERE tenant = $1 AND webhook_id = $2', [tenant, id]);
      const rows = await q('DELETE FROM webhooks WHERE tenant = $1 AND id = $2 RETURNING id', [tenant, id]);
      return rows.length > 0;
    });
  }

  async replay(input: ReplayInput): Promise<number> {
    if (input.deliveries.length === 0) return 0;
    const rows = await this.db.query<{ id: string }>(`${REPLAY_DELIVERIES} RETURNING d.id`, [
      ...newDeliveryArrays(input.deliveries.map((d) => ({ ...d, createdAt: input.now }))),
      input.onlyFailed,
    ]);
    return rows.length;
  }

  readonly synchronousLedger = false;

  /** A worker step, in one transaction on one pooled connection. */
  transact<R>(body: (tx: LedgerTransaction) => R): Promise<Awaited<R>> {
    return this.db.transaction((q) => Promise.resolve(body(ledgerTransaction(q, this.db.secretBox))));
  }

  async releaseLeases(node: string): Promise<number> {
    const rows = await this.db.query(
      `UPDATE webhook_deliveries SET locked_until = NULL, locked_by = NULL
       WHERE status = 'pending' AND locked_by = $1 RETURNING id`,
      [node],
    );
    return rows.length;
  }

  async unclaim(node: string, deliveryIds: string[]): Promise<void> {
    if (deliveryIds.length === 0) return;
    await this.db.query(
      `UPDATE webhook_deliveries SET attempts = attempts - 1, locked_until = NULL, locked_by = NULL
       WHERE id = ANY($1::text[]) AND locked_by = $2 AND status = 'pending' AND attempts > 0`,
      [deliveryIds, node],
    );
  }

  async renewLeases(node: string, deliveryIds: string[], until: number): Promise<void> {
    if (deliveryIds.length === 0) return;
    await this.db.query(
      `UPDATE webhook_deliveries SET locked_until = $3
       WHERE id = ANY($1::text[]) AND locked_by = $2 AND status = 'pending'`,
      [deliveryIds, node, until],
    );
  }

  async pendingEndpoints(): Promise<{ tenant: string; webhookId: string; nextAttemptAt: number }[]> {
    const rows = await this.db.query<{ tenant: string; webhook_id: string; due: string }>(
      `SELECT tenant, webhook_id, min(greatest(next_attempt_at, coalesce(locked_until, 0))) AS due
       FROM webhook_deliveries WHERE status = 'pending' GROUP BY tenant, webhook_id`,
    );
    return rows.map((r) => ({ tenant: r.tenant, webhookId: r.webhook_id, nextAttemptAt: Number(r.due) }));
  }

  async listDeliveries(tenant: string, webhookId: string, q: DeliveryQuery): Promise<DeliveryRow[]> {
    const params: unknown[] = [tenant, webhookId];
    let sql = `SELECT ${DELIVERY_COLUMNS} FROM webhook_deliveries WHERE tenant = $1 AND webhook_id = $2`;
    if (q.status) {
      params.push(q.status);
      sql += ` AND status = $${params.length}`;
    }
    params.push(q.limit);
    sql += ` ORDER BY created_at DESC, seq DESC LIMIT $${params.length}`;
    return (await this.db.query<DeliveryDbRow>(sql, params)).map((r) =>
      deliveryFromRow(r, this.db.secretBox),
    );
  }

  async getDelivery(tenant: string, webhookId: string, deliveryId: string): Promise<DeliveryRow | null> {
    const rows = await this.db.query<DeliveryDbRow>(
      `SELECT ${DELIVERY_COLUMNS} FROM webhook_deliveries WHERE tenant = $1 AND webhook_id = $2 AND id = $3`,
      [tenant, webhookId, deliveryId],
    );
    return rows[0] ? deliveryFromRow(rows[0], this.db.secretBox) : null;
  }

  async listAttempts(tenant: string, deliveryIds: string[]): Promise<Map<string, DeliveryAttempt[]>> {
    const out = new Map<string, DeliveryAttempt[]>(deliveryIds.map((id) => [id, []]));
    if (deliveryIds.length === 0) return out;
    const rows = await this.db.query<AttemptDbRow>(
      `SELECT delivery_id, attempt, started_at, duration_ms, status_code, error, success, response
       FROM webhook_attempts WHERE tenant = $1 AND delivery_id = ANY($2::text[]) ORDER BY delivery_id, attempt`,
      [tenant, deliveryIds],
    );
    for (const row of rows) out.get(row.delivery_id)?.push(attemptFromRow(row));
    return out;
  }

  async retryDelivery(tenant: string, webhookId: string, deliveryId: string, now: number): Promise<boolean> {
    const rows = await this.db.query(
      `UPDATE webhook_deliveries SET status = 'pending', next_attempt_at = $4, budget_start = attempts,
         completed_at = NULL
       WHERE tenant = $1 AND webhook_id = $2 AND id = $3
         AND NOT (status = 'pending' AND locked_until IS NOT NULL AND locked_until > $4)
       RETURNING id`,
      [tenant, webhookId, deliveryId, now],
    );
    return rows.length > 0;
  }

  async trigger(
    tenant: string,
    filter: { platform?: string; webhookId?: string },
    now: number,
  ): Promise<number> {
    const params: unknown[] = [now, tenant];
    let sql = `UPDATE webhook_deliveries SET next_attempt_at = least(next_attempt_at, $1)
      WHERE tenant = $2 AND status = 'pending'`;
    if (filter.platform !== undefined) {
      params.push(filter.platform);
      sql += ` AND platform = $${params.length}`;
    }
    if (filter.webhookId !== undefined) {
      params.push(filter.webhookId);
      sql += ` AND webhook_id = $${params.length}`;
    }
    return (await this.db.query(`${sql} RETURNING id`, params)).length;
  }

  async pendingDeliveries(
    tenant: string,
    platform: string | undefined,
    limit: number,
  ): Promise<DeliveryRow[]> {
    const params: unknown[] = [tenant];
    let sql = `SELECT ${DELIVERY_COLUMNS} FROM webhook_deliveries WHERE tenant = $1 AND status = 'pending'`;
    if (platform !== undefined) {
      params.push(platform);
      sql += ` AND platform = $${params.length}`;
    }
    params.push(limit);
    sql += ` ORDER BY seq, webhook_id LIMIT $${params.length}`;
    return (await this.db.query<DeliveryDbRow>(sql, params)).map((r) =>
      deliveryFromRow(r, this.db.secretBox),
    );
  }
}

function prefixed(alias: string): string {
  return DELIVERY_COLUMNS.split(', ')
    .map((c) => `${alias}.${c}`)
    .join(', ');
}
