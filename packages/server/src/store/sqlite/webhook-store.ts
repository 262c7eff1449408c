/**
 * The webhook tables on SQLite (see ../webhook-types.ts for the contract). Writes go through the owning
 * SqliteStore's writer queue (`write`), so they never interleave with a log transaction; reads use the
 * reader connection. `insertDeliveries` runs inside the log transaction (the outbox).
 */

import type { DeliveryAttempt } from '@syncbridge/protocol';
import type Database from 'better-sqlite3';
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
import { SqliteWebhookReports } from './webhook-reports.ts';

export interface SqliteAccess {
  /** Seals the endpoints' secrets at rest when set. */
  secretBox?: SecretBox | null;
  writer: Database.Database;
  reader: Database.Database;
  /** Runs fn in one IMMEDIATE transaction on the writer, in turn with every other write. */
  write<T>(fn: () => T): Promise<T>;
  /**
   * The same, committed without waiting for the disk (synchronous=NORMAL for this transaction only): it
   * survives a process crash, and a power cut can lose it. The next synced commit syncs it as well.
   */
  writeUnsynced<T>(fn: () => T): Promise<T>;
}

export function newDeliveryValues(d: NewDelivery): unknown[] {
  return [
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
}

export const PLACEHOLDERS_12 = new Array(12).fill('?').join(', ');

/** A delivery as its commit writes it (COMMITTED_DELIVERY_COLUMNS): leased at once when `lease` is set. */
export function committedDeliveryValues(d: NewDelivery): unknown[] {
  const values = newDeliveryValues(d);
  values.push(d.lease ? 1 : 0, d.lease?.until ?? null, d.lease?.node ?? null);
  return values;
}

export const PLACEHOLDERS_15 = new Array(15).fill('?').join(', ');

export class SqliteWebhookStore extends SqliteWebhookReports implements WebhookStore {
  private readonly stmts;

  constructor(db: SqliteAccess) {
    super(db);
    const w = db.writer;
    const r = db.reader;
    this.stmts = {
      insertDelivery: w.prepare(
        `INSERT INTO webhook_deliveries (${COMMITTED_DELIVERY_COLUMNS}) VALUES (${PLACEHOLDERS_15})`,
      ),
      replayDelivery: w.prepare(
        `INSERT INTO webhook_deliveries (${NEW_DELIVERY_COLUMNS}) VALUES (${PLACEHOLDERS_12})
         ON CONFLICT (tenant, webhook_id, event_id) DO UPDATE SET status = 'pending',
           next_attempt_at = excluded.next_attempt_at, budget_start = webhook_deliveries.attempts,
           completed_at = NULL
         WHERE webhook_deliveries.status <> 'pending' AND (? = 0 OR webhook_deliveries.status <> 'success')`,
      ),
      insertAttempt: w.prepare(
        `INSERT OR IGNORE INTO webhook_attempts (delivery_id, attempt, tenant, webhook_id, started_at, duration_ms,
           status_code, error, success, response) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
      ),
      finishAttempt: w.prepare(
        `UPDATE webhook_deliveries SET status = ?, next_attempt_at = coalesce(?, next_attempt_at),
           locked_until = NULL, locked_by = NULL, completed_at = ?, last_status = ?, last_error = ?,
           last_duration_ms = ?
         WHERE tenant = ? AND id = ? AND status = 'pending' AND attempts = ?`,
      ),
      counters: w.prepare(
        `UPDATE webhooks SET total_calls = total_calls + ?, failed_calls = failed_calls + ?,
           consecutive_failures = CASE WHEN ? THEN ? ELSE consecutive_failures + ? END,
           last_triggered_at = ?, last_success_at = coalesce(?, last_success_at),
           last_failure_at = coalesce(?, last_failure_at)
         WHERE tenant = ? AND id = ?`,
      ),
      disable: w.prepare(
        `UPDATE webhooks SET status = 'disabled', status_reason = ?, updated_at = ?
         WHERE tenant = ? AND id = ? AND status <> 'disabled'`,
      ),
      disableFailing: w.prepare(
        `UPDATE webhooks SET status = 'disabled', status_reason = ?, updated_at = ?
         WHERE tenant = ? AND id = ? AND status = 'active' AND consecutive_failures >= ?`,
      ),
      head: w.prepare<[string, string], DeliveryDbRow>(
        `SELECT ${DELIVERY_COLUMNS} FROM webhook_deliveries
         WHERE tenant = ? AND webhook_id = ? AND status = 'pending' ORDER BY seq LIMIT 1`,
      ),
      claimOne: w.prepare<[number, string, string, number], DeliveryDbRow>(
        `UPDATE webhook_deliveries SET locked_until = ?, locked_by = ?, attempts = attempts + 1
         WHERE id = ? AND status = 'pending' AND (locked_until IS NULL OR locked_until <= ?)
         RETURNING ${DELIVERY_COLUMNS}`,
      ),
      claimMany: w.prepare<[number, string, string, string, number, number, number], DeliveryDbRow>(
        `UPDATE webhook_deliveries SET locked_until = ?, locked_by = ?, attempts = attempts + 1
         WHERE id IN (SELECT id FROM webhook_deliveries
           WHERE tenant = ? AND webhook_id = ? AND status = 'pending' AND next_attempt_at <= ?
             AND (locked_until IS NULL OR locked_until <= ?)
           ORDER BY seq LIMIT ?)
         RETURNING ${DELIVERY_COLUMNS}`,
      ),
      endpoints: r.prepare<[], EndpointRow>(
        `SELECT ${ENDPOINT_COLUMNS} FROM webhooks ORDER BY tenant, created_at`,
      ),
      tenantEndpoints: r.prepare<[string], EndpointRow>(
        `SELECT ${ENDPOINT_COLUMNS} FROM webhooks WHERE tenant = ? ORDER BY created_at, id`,
      ),
      endpoint: r.prepare<[string, string], EndpointRow>(
        `SELECT ${ENDPOINT_COLUMNS} FROM webhooks WHERE tenant = ? AND id = ?`,
      ),
      getDelivery: r.prepare<[string, string, string], DeliveryDbRow>(
        `SELECT ${DELIVERY_COLUMNS} FROM webhook_deliveries WHERE tenant = ? AND webhook_id = ? AND id = ?`,
      ),
      attempts: r.prepare<[string, string], AttemptDbRow>(
        `SELECT delivery_id, attempt, started_at, duration_ms, status_code, error, success, response
         FROM webhook_attempts WHERE tenant = ? AND delivery_id = ? ORDER BY attempt`,
      ),
    };
  }

  /** The outbox: called inside the log transaction, on the writer connection. */
  insertDeliveries(deliveries: NewDelivery[]): void {
    for (const d of deliveries) this.stmts.insertDelivery.run(...committedDeliveryValues(d));
  }

  async listAllEndpoints(): Promise<WebhookEndpoint[]> {
    return this.stmts.endpoints.all().map((row) => endpointFromRow(row, this.db.secretBox));
  }

  async listEndpoints(tenant: string): Promise<WebhookEndpoint[]> {
    return this.stmts.tenantEndpoints.all(tenant).map((row) => endpointFromRow(row, this.db.secretBox));
  }

  async getEndpoint(tenant: string, id: string): Promise<WebhookEndpoint | null> {
    const row = this.stmts.endpoint.get(tenant, id);
    return row ? endpointFromRow(row, this.db.secretBox) : null;
  }

  /** See the PostgreSQL store: every endpoint change bumps its tenant's hooks version in its transaction. */
  private bumpHooksVersion(tenant: string): void {
    this.db.writer
      .prepare(
        `INSERT INTO tenant_heads (tenant, seq, hooks_version) VALUES (?, 0, 1)
         ON CONFLICT (tenant) DO UPDATE SET hooks_version = hooks_version + 1`,
      )
      .run(tenant);
  }

  async insertEndpoint(e: WebhookEndpoint): Promise<void> {
    await this.db.write(() => {
      this.bumpHooksVersion(e.tenant);
      this.db.writer
        .prepare(
          `INSERT INTO webhooks (tenant, id, config, secrets, status, status_reason, created_at, updated_at)
           VALUES (?, ?, ?, ?, ?, ?, ?, ?)`,
        )
        .run(
          e.tenant,
          e.id,
          JSON.stringify(endpointConfig(e)),
          sealJson(e.secrets, this.db.secretBox),
          e.status,
          e.statusReason,
          e.createdAt,
          e.updatedAt,
        );
    });
  }

  async updateEndpoint(e: WebhookEndpoint): Promise<void> {
    await this.db.write(() => {
      this.bumpHooksVersion(e.tenant);
      this.db.writer
        .prepare(
          `UPDATE webhooks SET config = ?, secrets = ?, status = ?, status_reason = ?, updated_at = ?,
             consecutive_failures = CASE WHEN ? = 'active' AND status <> 'active' THEN 0 ELSE consecutive_failures END
           WHERE tenant = ? AND id = ?`,
        )
        .run(
          JSON.stringify(endpointConfig(e)),
          sealJson(e.secrets, this.db.secretBox),
          e.status,
          e.statusReason,
          e.updatedAt,
          e.status,
          e.tenant,
          e.id,
        );
    });
  }

  async deleteEndpoint(tenant: string, id: string): Promise<boolean> {
    return this.db.write(() => {
      this.bumpHooksVersion(tenant);
      const w = this.db.writer;
      w.prepare('DELETE FROM webhook_attempts WHERE tenant = ? AND webhook_id = ?').run(tenant, id);
      w.prepare('DELETE FROM webhook_deliveries WHERE tenant = ? AND webhook_id = ?').run(tenant, id);
      return w.prepare('DELETE FROM webhooks WHERE tenant = ? AND id = ?').run(tenant, id).changes > 0;
    });
  }

  async replay(input: ReplayInput): Promise<number> {
    return this.db.write(() => {
      let n = 0;
      for (const d of input.deliveries) {
        const values = newDeliveryValues({ ...d, createdAt: input.now });
        // A new row is created now; an existing one keeps its created_at and becomes due now.
        n += this.stmts.replayDelivery.run(...values, input.onlyFailed ? 1 : 0).changes;
      }
      return n;
    });
  }

  readonly synchronousLedger = true;

  /**
   * A worker step: attempt records and leases need no fsync of their own (losing the last ones to a
   * power cut only means those deliveries are sent again, at least once), which saves a disk flush per step.
   */
  transact<R>(body: (tx: LedgerTransaction) => R): Promise<Awaited<R>> {
    return this.db.writeUnsynced(() => body(this.tx)) as Promise<Awaited<R>>;
  }

  /** The ledger's primitives, run inside `transact` on the writer connection. */
  private readonly tx: LedgerTransaction = {
    recordAttempts: (results, now) => {
      const s = this.stmts;
      for (const r of results) {
        s.insertAttempt.run(
          r.deliveryId,
          r.attempt,
          r.tenant,
          r.webhookId,
          r.startedAt,
          r.durationMs,
          r.statusCode,
          r.error,
          r.success ? 1 : 0,
          r.responseBody,
        );
        s.finishAttempt.run(
          r.next.status,
          r.next.status === 'pending' ? r.next.at : null,
          r.next.status === 'pending' ? null : now,
          r.statusCode,
          r.error,
          r.durationMs,
          r.tenant,
          r.deliveryId,
          // A late answer to an attempt whose lease ran out, after the delivery was claimed again, is
          // logged but must not end or unlock that newer attempt.
          r.attempt,
        );
      }
    },
    addCounters: (d, now) => {
      this.stmts.counters.run(
        d.calls,
        d.failed,
        d.reset ? 1 : 0,
        d.consecutive,
        d.consecutive,
        now,
        d.succeededAt,
        d.failedAt,
        d.tenant,
        d.webhookId,
      );
    },
    disable: (tenant, id, reason, now) => this.stmts.disable.run(reason, now, tenant, id).changes > 0,
    disableFailing: (tenant, id, reason, now, threshold) =>
      this.stmts.disableFailing.run(reason, now, tenant, id, threshold).changes > 0,
    claimHead: (c, lease) => {
      const head = this.stmts.head.get(c.tenant, c.webhookId);
      if (!head || Number(head.next_attempt_at) > lease.now) return null;
      const row = this.stmts.claimOne.get(lease.until, lease.node, head.id, lease.now);
      return row ? deliveryFromRow(row, this.db.secretBox) : null;
    },
    claimDue: (c, lease) =>
      this.stmts.claimMany
        .all(lease.until, lease.node, c.tenant, c.webhookId, lease.now, lease.now, c.limit)
        .map((r) => deliveryFromRow(r, this.db.secretBox)),
  };

  async releaseLeases(node: string): Promise<number> {
    return this.db.write(
      () =>
        this.db.writer
          .prepare(
            `UPDATE webhook_deliveries SET locked_until = NULL, locked_by = NULL
             WHERE status = 'pending' AND locked_by = ?`,
          )
          .run(node).changes,
    );
  }

  async unclaim(node: string, deliveryIds: string[]): Promise<void> {
    if (deliveryIds.length === 0) return;
    await this.db.write(() => {
      const stmt = this.db.writer.prepare(
        `UPDATE webhook_deliveries SET attempts = attempts - 1, locked_until = NULL, locked_by = NULL
         WHERE id = ? AND locked_by = ? AND status = 'pending' AND attempts > 0`,
      );
      for (const id of deliveryIds) stmt.run(id, node);
    });
  }

  async renewLeases(node: string, deliveryIds: string[], until: number): Promise<void> {
    if (deliveryIds.length === 0) return;
    await this.db.write(() => {
      const stmt = this.db.writer.prepare(
        `UPDATE webhook_deliveries SET locked_until = ? WHERE id = ? AND locked_by = ? AND status = 'pending'`,
      );
      for (const id of deliveryIds) stmt.run(until, id, node);
    });
  }

  async pendingEndpoints(): Promise<{ tenant: string; webhookId: string; nextAttemptAt: number }[]> {
    return this.db.reader
      .prepare<[], { tenant: string; webhook_id: string; due: number }>(
        `SELECT tenant, webhook_id, min(max(next_attempt_at, coalesce(locked_until, 0))) AS due
         FROM webhook_deliveries WHERE status = 'pending' GROUP BY tenant, webhook_id`,
      )
      .all()
      .map((r) => ({ tenant: r.tenant, webhookId: r.webhook_id, nextAttemptAt: Number(r.due) }));
  }

  async listDeliveries(tenant: string, webhookId: string, q: DeliveryQuery): Promise<DeliveryRow[]> {
    const params: unknown[] = [tenant, webhookId];
    let sql = `SELECT ${DELIVERY_COLUMNS} FROM webhook_deliveries WHERE tenant = ? AND webhook_id = ?`;
    if (q.status) {
      sql += ' AND status = ?';
      params.push(q.status);
    }
    sql += ' ORDER BY created_at DESC, seq DESC LIMIT ?';
    params.push(q.limit);
    return this.db.reader
      .prepare<unknown[], DeliveryDbRow>(sql)
      .all(...params)
      .map((r) => deliveryFromRow(r, this.db.secretBox));
  }

  async getDelivery(tenant: string, webhookId: string, deliveryId: string): Promise<DeliveryRow | null> {
    const row = this.stmts.getDelivery.get(tenant, webhookId, deliveryId);
    return row ? deliveryFromRow(row, this.db.secretBox) : null;
  }

  async listAttempts(tenant: string, deliveryIds: string[]): Promise<Map<string, DeliveryAttempt[]>> {
    const out = new Map<string, DeliveryAttempt[]>();
    for (const id of deliveryIds) out.set(id, this.stmts.attempts.all(tenant, id).map(attemptFromRow));
    return out;
  }

  async retryDelivery(tenant: string, webhookId: string, deliveryId: string, now: number): Promise<boolean> {
    return this.db.write(
      () =>
        this.db.writer
          .prepare(
            `UPDATE webhook_deliveries SET status = 'pending', next_attempt_at = ?, budget_start = attempts,
               completed_at = NULL
             WHERE tenant = ? AND webhook_id = ? AND id = ?
               AND NOT (status = 'pending' AND locked_until IS NOT NULL AND locked_until > ?)`,
          )
          .run(now, tenant, webhookId, deliveryId, now).changes > 0,
    );
  }

  async trigger(
    tenant: string,
    filter: { platform?: string; webhookId?: string },
    now: number,
  ): Promise<number> {
    const params: unknown[] = [now, tenant];
    let sql = `UPDATE webhook_deliveries SET next_attempt_at = min(next_attempt_at, ?)
      WHERE tenant = ? AND status = 'pending'`;
    if (filter.platform !== undefined) {
      sql += ' AND platform = ?';
      params.push(filter.platform);
    }
    if (filter.webhookId !== undefined) {
      sql += ' AND webhook_id = ?';
      params.push(filter.webhookId);
    }
    return this.db.write(() => this.db.writer.prepare(sql).run(...params).changes);
  }

  async pendingDeliveries(
    tenant: string,
    platform: string | undefined,
    limit: number,
  ): Promise<DeliveryRow[]> {
    const params: unknown[] = [tenant];
    let sql = `SELECT ${DELIVERY_COLUMNS} FROM webhook_deliveries WHERE tenant = ? AND status = 'pending'`;
    if (platform !== undefined) {
      sql += ' AND platform = ?';
      params.push(platform);
    }
    sql += ' ORDER BY seq, webhook_id LIMIT ?';
    params.push(limit);
    return this.db.reader
      .prepare<unknown[], DeliveryDbRow>(sql)
      .all(...params)
      .map((r) => deliveryFromRow(r, this.db.secretBox));
  }
}
