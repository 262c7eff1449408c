/**
 * The scheduled pull connector (`kind: pull`), for providers such as open-banking APIs.
 *
 * - Delta sync: per connection, the changes since its stored cursor, page by page; each page's accounts,
 *   transactions (any configured resources) and deletions go to the log in ONE `mutate` call, so one
 *   transaction; the cursor is stored after it commits. Every mutation's `mid` derives from the
 *   connector, the record and the provider's version of the item (or its content's hash), so a re-pull
 *   of the same page (a crash before the cursor was saved, a webhook and a schedule at once) is
 *   acknowledged as `duplicate` and changes nothing.
 * - Schedules (cron, croner) enqueue every connection; a provider webhook or the trigger route enqueues
 *   at once, ahead of the schedule. Connections run `concurrency` at a time, critical ones first.
 * - A circuit breaker per provider: failures in a row open it, runs are then skipped; after `openMs`
 *   one probe goes through, and its outcome closes or reopens it. A failed run is retried with
 *   exponential backoff (an open circuit's retry waits for its probe time).
 * - Staleness: each connection's data must be younger than its limit (default 4 h); crossing it raises
 *   an alert (`syncbridge.connector_stale` event, health and metrics), and the next success clears it
 *   (`syncbridge.connector_fresh`).
 * - Reconciliation (scheduled or triggered): the provider's full snapshot against the records; missing,
 *   changed and extra records are reported (`syncbridge.connector_reconciled`) and repaired.
 */
import { createHash, randomUUID } from 'node:crypto';
import type { LogEvent, Mutation, MutationResult, SyncRecord } from '@syncbridge/protocol';
import { Cron } from 'croner';
import { Backoff } from './backoff.ts';
import { CircuitBreaker, DEFAULT_CIRCUIT } from './circuit-breaker.ts';
import type { Priority, PullConnection, PullOptions, PullResource } from './config.ts';
import { canonicalJson, getPath } from './json-path.ts';
import { HttpPullProvider, ProviderError, type PullProvider, type TemplateVariables } from './pull-http.ts';
import type {
  Connector,
  ConnectorContext,
  ConnectorHealth,
  ConnectorState,
  TriggerRequest,
  TriggerResult,
} from './types.ts';
import { ConnectorSpecError } from './types.ts';

export const DEFAULT_STALENESS_MS = 4 * 60 * 60 * 1000;
export const DEFAULT_RESOURCES: PullResource[] = [
  { collection: 'accounts', path: 'accounts', id: 'id', version: 'version', deletedPath: 'deleted.accounts' },
  {
    collection: 'transactions',
    path: 'transactions',
    id: 'id',
    version: 'version',
    deletedPath: 'deleted.transactions',
  },
];
const PRIORITY: Record<Priority, number> = { critical: 0, high: 1, normal: 2, low: 3 };
/** Triggered runs (webhooks, the trigger route) go before scheduled ones, critical ones first. */
const URGENT = -10;
const REPORT_IDS = 100;

export type RunKind = 'delta' | 'reconcile';

export interface RunReport extends Record<string, unknown> {
  connection: string;
  kind: RunKind;
  status: 'ok' | 'failed' | 'skipped';
  reason: string;
  startedAt: string;
  durationMs: number;
  pages?: number;
  applied?: number;
  duplicates?: number;
  deleted?: number;
  rejected?: number;
  error?: string;
  cursor?: string | null;
  missing?: number;
  changed?: number;
  extra?: number;
  repaired?: number;
  differences?: { missing: string[]; changed: string[]; extra: string[] };
}

interface Job {
  connection: PullConnection;
  kind: RunKind;
  priority: number;
  order: number;
  reason: string;
  waiters: Array<(report: RunReport) => void>;
}

interface ConnectionStatus {
  lastSuccessAt: number | null;
  lastError: string | null;
  lastRun: RunReport | null;
  lastReconciliation: RunReport | null;
  stale: boolean;
  staleSince: number | null;
  backoff: Backoff;
  retryTimer: NodeJS.Timeout | null;
  retryAt: number | null;
  cursor: string | null;
}

function hash(...parts: string[]): string {
  return createHash('sha256').update(parts.join('\u0000')).digest('hex').slice(0, 40);
}

/** A provider id as a record id (no whitespace, `/`, `?` or `#`). */
function safeId(id: string): string {
  return id.replace(/[\s/?#]/g, '_');
}

export class PullConnector implements Connector {
  readonly kind = 'pull';
  readonly name: string;
  readonly tenant: string;
  readonly provider: string;
  private ctx: ConnectorContext | null = null;
  private readonly source: PullProvider;
  private readonly resources: PullResource[];
  private readonly connectionField: string;
  private readonly status = new Map<string, ConnectionStatus>();
  private readonly queue: Job[] = [];
  private readonly running = new Map<string, Job>();
  private order = 0;
  private crons: Cron[] = [];
  private staleTimer: NodeJS.Timeout | null = null;
  private stopped = true;
  private startedAt = 0;
  private abort = new AbortController();
  private inFlight = new Set<Promise<void>>();
  private readonly counts = {
    runs: 0,
    failed: 0,
    skipped: 0,
    applied: 0,
    duplicates: 0,
    deleted: 0,
    rejected: 0,
    reconciliations: 0,
    repaired: 0,
    alerts: 0,
  };

  private readonly breaker: CircuitBreaker;

  /**
   * `hooks.provider` replaces the configured HTTP provider (`http` is then ignored); `hooks.breaker` is
   * the provider's circuit breaker when several connectors share it (the manager passes one);
   * `hooks.variables` gives the HTTP provider's templates their `env.` / `secrets.` values before each
   * request (the manager passes what the definition may read; nothing else is available).
   */
  constructor(
    readonly options: PullOptions,
    hooks: { provider?: PullProvider; breaker?: CircuitBreaker; variables?: TemplateVariables } = {},
  ) {
    this.name = options.name;
    this.tenant = options.tenant;
    this.provider = options.provider ?? options.name;
    this.breaker =
      hooks.breaker ?? new CircuitBreaker(this.provider, { ...DEFAULT_CIRCUIT, ...options.circuit });
    this.source = hooks.provider ?? new HttpPullProvider(options.http, hooks.variables);
    this.resources = options.resources ?? DEFAULT_RESOURCES;
    this.connectionField = options.connectionField ?? 'connectionId';
    for (const connection of options.connections) {
      this.status.set(connection.id, {
        lastSuccessAt: null,
        lastError: null,
        lastRun: null,
        lastReconciliation: null,
        stale: false,
        staleSince: null,
        backoff: new Backoff({
          initialMs: 1000,
          maxMs: 5 * 60_000,
          factor: 2,
          jitter: 0.2,
          ...options.retry,
        }),
        retryTimer: null,
        retryAt: null,
        cursor: null,
      });
    }
  }

  private limitOf(connection: PullConnection): number {
    return connection.stalenessLimitMs ?? this.options.stalenessLimitMs ?? DEFAULT_STALENESS_MS;
  }

  async start(ctx: ConnectorContext): Promise<void> {
    this.ctx = ctx;
    this.stopped = false;
    this.startedAt = Date.now();
    this.abort = new AbortController();
    for (const connection of this.options.connections) {
      const s = this.status.get(connection.id)!;
      s.lastSuccessAt = (await ctx.state.get<number>(`lastSuccess:${connection.id}`)) ?? null;
      s.cursor = (await ctx.state.get<string>(`cursor:${connection.id}`)) ?? null;
      s.lastReconciliation = (await ctx.state.get<RunReport>(`reconciliation:${connection.id}`)) ?? null;
    }
    if (this.options.schedule) {
      this.crons.push(
        new Cron(this.options.schedule, { protect: true }, () => {
          void this.enqueueAll(this.options.connections, 'delta', 'schedule');
        }),
      );
    }
    if (this.options.reconcileSchedule) {
      this.crons.push(
        new Cron(this.options.reconcileSchedule, { protect: true }, () => {
          void this.enqueueAll(this.options.connections, 'reconcile', 'schedule');
        }),
      );
    }
    const smallest = Math.min(...this.options.connections.map((c) => this.limitOf(c)), DEFAULT_STALENESS_MS);
    const every = this.options.staleCheckMs ?? Math.max(10, Math.min(60_000, Math.floor(smallest / 4)));
    this.staleTimer = setInterval(() => void this.checkStaleness(), every);
    this.staleTimer.unref();
    await this.checkStaleness();
    if (this.options.pullOnStart ?? true) void this.enqueueAll(this.options.connections, 'delta', 'start');
  }

  /** Runs now: one connection or all, a delta sync or a reconciliation; resolves with the reports. */
  async trigger(request: TriggerRequest): Promise<TriggerResult> {
    const kind: RunKind = request.reconcile ? 'reconcile' : 'delta';
    let connections = this.options.connections;
    if (request.connection !== undefined) {
      connections = connections.filter((c) => c.id === request.connection);
      if (connections.length === 0) {
        throw new ConnectorSpecError([`connector ${this.name} has no connection ${request.connection}`]);
      }
    }
    const runs = await this.enqueueAll(connections, kind, request.reason ?? 'trigger', URGENT);
    return { runs };
  }

  /** A domain event of the configured `triggerOn` type pulls its connection (or all) at once. */
  onEvent(event: LogEvent): void {
    const on = this.options.triggerOn;
    if (!on || this.stopped || event.kind !== 'event' || event.type !== on.type) return;
    const id = on.connectionPath ? getPath(event.payload, on.connectionPath) : undefined;
    const named = this.options.connections.filter((c) => c.id === String(id));
    const connections = named.length > 0 ? named : this.options.connections;
    if (on.connectionPath && named.length === 0) {
      this.ctx?.logger.warn(
        { event: event.seq, connection: id },
        'trigger event names no known connection; pulling all',
      );
    }
    void this.enqueueAll(connections, 'delta', `event ${event.type} #${event.seq}`, URGENT);
  }

  /** Queues runs of several connections, then starts them in priority order. */
  private enqueueAll(
    connections: PullConnection[],
    kind: RunKind,
    reason: string,
    boost = 0,
  ): Promise<RunReport[]> {
    const runs = connections.map((c) =>
      this.enqueue(c, kind, reason, PRIORITY[c.priority ?? 'normal'] + boost, false),
    );
    this.pump();
    return Promise.all(runs);
  }

  /**
   * Queues a run; a run of the same connection and kind already waiting is joined (and moved up to the
   * higher priority) rather than queued twice.
   */
  enqueue(
    connection: PullConnection,
    kind: RunKind,
    reason: string,
    priority?: number,
    start = true,
  ): Promise<RunReport> {
    const p = priority ?? PRIORITY[connection.priority ?? 'normal'];
    if (this.stopped) {
      return Promise.resolve(
        this.report(connection, kind, reason, Date.now(), 'skipped', { error: 'stopped' }),
      );
    }
    return new Promise((resolve) => {
      const waiting = this.queue.find((j) => j.connection.id === connection.id && j.kind === kind);
      if (waiting) {
        waiting.waiters.push(resolve);
        if (p < waiting.priority) {
          waiting.priority = p;
          waiting.reason = reason;
          this.sortQueue();
        }
        return;
      }
      this.queue.push({ connection, kind, priority: p, order: this.order++, reason, waiters: [resolve] });
      this.sortQueue();
      if (start) this.pump();
    });
  }

  private sortQueue(): void {
    this.queue.sort((a, b) => a.priority - b.priority || a.order - b.order);
  }

  private pump(): void {
    const concurrency = this.options.concurrency ?? 2;
    while (this.running.size < concurrency && !this.stopped) {
      const index = this.queue.findIndex((j) => !this.running.has(j.connection.id));
      if (index < 0) return;
      const job = this.queue.splice(index, 1)[0]!;
      this.running.set(job.connection.id, job);
      const done = this.run(job).then((report) => {
        this.running.delete(job.connection.id);
        for (const w of job.waiters) w(report);
        this.pump();
      });
      this.inFlight.add(done);
      void done.finally(() => this.inFlight.delete(done));
    }
  }

  private report(
    connection: PullConnection,
    kind: RunKind,
    reason: string,
    started: number,
    status: RunReport['status'],
    extra: Partial<RunReport> = {},
  ): RunReport {
    return {
      connection: connection.id,
      kind,
      status,
      reason,
      startedAt: new Date(started).toISOString(),
      durationMs: Date.now() - started,
      ...extra,
    };
  }

  private async run(job: Job): Promise<RunReport> {
    const { connection, kind, reason } = job;
    const s = this.status.get(connection.id)!;
    const started = Date.now();
    if (s.retryTimer) {
      clearTimeout(s.retryTimer);
      s.retryTimer = null;
      s.retryAt = null;
    }
    if (!this.breaker.tryAcquire()) {
      this.counts.skipped += 1;
      const report = this.report(connection, kind, reason, started, 'skipped', {
        error: `circuit open for provider ${this.provider} until ${this.breaker.status().retryAt}`,
      });
      s.lastRun = report;
      this.scheduleRetry(connection, kind);
      return report;
    }
    this.counts.runs += 1;
    let report: RunReport;
    try {
      report =
        kind === 'delta'
          ? await this.delta(connection, reason, started)
          : await this.reconcile(connection, reason, started);
      s.lastError = null;
      s.backoff.reset();
      s.lastSuccessAt = Date.now();
      await this.ctx!.state.put(`lastSuccess:${connection.id}`, s.lastSuccessAt);
      await this.checkStaleness();
    } catch (err) {
      const message = (err as Error).message;
      if (err instanceof ProviderError) this.breaker.failure();
      else this.breaker.release();
      this.counts.failed += 1;
      s.lastError = message;
      report = this.report(connection, kind, reason, started, 'failed', { error: message });
      this.ctx?.logger.warn({ connection: connection.id, kind, err: message }, 'pull failed');
      this.scheduleRetry(connection, kind);
    }
    if (kind === 'reconcile' && report.status === 'ok') {
      s.lastReconciliation = report;
      await this.ctx!.state.put(`reconciliation:${connection.id}`, report).catch(() => undefined);
    }
    s.lastRun = report;
    return report;
  }

  /** After a failure: try again after a backoff delay, or at the circuit's probe time when it is open. */
  private scheduleRetry(connection: PullConnection, kind: RunKind): void {
    const s = this.status.get(connection.id)!;
    if (this.stopped || s.retryTimer) return;
    const circuit = this.breaker.status();
    const delay =
      circuit.state === 'open' && circuit.retryAt
        ? Math.max(0, Date.parse(circuit.retryAt) - Date.now()) + 5
        : s.backoff.next();
    s.retryAt = Date.now() + delay;
    s.retryTimer = setTimeout(() => {
      s.retryTimer = null;
      s.retryAt = null;
      void this.enqueue(connection, kind, 'retry');
    }, delay);
    s.retryTimer.unref();
  }

  private async fetch<T>(call: (signal: AbortSignal) => Promise<T>): Promise<T> {
    try {
      const result = await call(this.abort.signal);
      this.breaker.success();
      return result;
    } catch (err) {
      if (err instanceof ProviderError) throw err;
      throw new ProviderError((err as Error).message);
    }
  }

  private recordOf(
    connection: PullConnection,
    resource: PullResource,
    item: unknown,
  ): { id: string; version: string; data: Record<string, unknown> } | null {
    if (item === null || typeof item !== 'object' || Array.isArray(item)) return null;
    const providerId = getPath(item, resource.id ?? 'id');
    if (providerId === undefined || providerId === null || providerId === '') return null;
    const data = { ...(item as Record<string, unknown>), [this.connectionField]: connection.id };
    const v = resource.version ? getPath(item, resource.version) : undefined;
    const version = v === undefined || v === null ? `h${hash(canonicalJson(item))}` : String(v);
    return { id: safeId(`${connection.id}:${String(providerId)}`), version, data };
  }

  /** Tallies the results of `mutations` (in the same order) by what happened to each. */
  private count(
    mutations: Mutation[],
    results: MutationResult[],
  ): { applied: number; deleted: number; duplicates: number; rejected: number; error?: string } {
    const out = { applied: 0, deleted: 0, duplicates: 0, rejected: 0 } as {
      applied: number;
      deleted: number;
      duplicates: number;
      rejected: number;
      error?: string;
    };
    results.forEach((r, i) => {
      if (r.status === 'duplicate') out.duplicates += 1;
      else if (r.status === 'rejected' || r.status === 'conflict') {
        out.rejected += 1;
        out.error ??= r.error?.message ?? r.status;
      } else if (mutations[i]?.op === 'delete') out.deleted += 1;
      else out.applied += 1;
    });
    return out;
  }

  private async delta(connection: PullConnection, reason: string, started: number): Promise<RunReport> {
    const ctx = this.ctx!;
    const s = this.status.get(connection.id)!;
    const cursorPath = this.options.http.cursorPath ?? 'cursor';
    const hasMorePath = this.options.http.hasMorePath ?? 'hasMore';
    const totals = { pages: 0, applied: 0, duplicates: 0, deleted: 0, rejected: 0 };
    let lastRejection: string | undefined;
    let more = true;
    while (more && totals.pages < (this.options.maxPages ?? 100) && !this.stopped) {
      const since = s.cursor;
      const body = await this.fetch((signal) => this.source.changes(connection, since, signal));
      const mutations: Mutation[] = [];
      for (const resource of this.resources) {
        const items = getPath(body, resource.path);
        for (const item of Array.isArray(items) ? items : []) {
          const rec = this.recordOf(connection, resource, item);
          if (!rec) continue;
          mutations.push({
            mid: `pull:${hash(this.name, resource.collection, rec.id, rec.version)}`,
            collection: resource.collection,
            id: rec.id,
            op: 'put',
            data: rec.data,
          });
        }
        const removed = resource.deletedPath ? getPath(body, resource.deletedPath) : undefined;
        for (const raw of Array.isArray(removed) ? removed : []) {
          if (typeof raw !== 'string' && typeof raw !== 'number') continue;
          const id = safeId(`${connection.id}:${String(raw)}`);
          const existing = await ctx.records.get(resource.collection, id);
          if (!existing || existing.deleted) continue;
          mutations.push({
            mid: `pull-del:${hash(this.name, resource.collection, id, since ?? '', String(existing.version))}`,
            collection: resource.collection,
            id,
            op: 'delete',
          });
        }
      }
      if (mutations.length > 0) {
        const counted = this.count(mutations, await ctx.mutate(mutations));
        totals.applied += counted.applied;
        totals.deleted += counted.deleted;
        totals.duplicates += counted.duplicates;
        totals.rejected += counted.rejected;
        if (counted.error) lastRejection = counted.error;
      }
      const next = getPath(body, cursorPath);
      if (next !== undefined && next !== null && String(next) !== since) {
        s.cursor = String(next);
        await ctx.state.put(`cursor:${connection.id}`, s.cursor);
      }
      more = getPath(body, hasMorePath) === true && s.cursor !== since;
      totals.pages += 1;
    }
    this.counts.applied += totals.applied;
    this.counts.duplicates += totals.duplicates;
    this.counts.deleted += totals.deleted;
    this.counts.rejected += totals.rejected;
    return this.report(connection, 'delta', reason, started, 'ok', {
      ...totals,
      cursor: s.cursor,
      ...(lastRejection ? { error: `${totals.rejected} change(s) refused: ${lastRejection}` } : {}),
    });
  }

  private async reconcile(connection: PullConnection, reason: string, started: number): Promise<RunReport> {
    const ctx = this.ctx!;
    const snapshot = this.source.snapshot?.bind(this.source);
    if (!snapshot) throw new Error(`provider of ${this.name} offers no snapshot to reconcile against`);
    const body = await this.fetch((signal) => snapshot(connection, signal));
    const run = randomUUID();
    const mutations: Mutation[] = [];
    const diff = { missing: [] as string[], changed: [] as string[], extra: [] as string[] };
    for (const resource of this.resources) {
      const wanted = new Map<string, Record<string, unknown>>();
      const items = getPath(body, resource.path);
      for (const item of Array.isArray(items) ? items : []) {
        const rec = this.recordOf(connection, resource, item);
        if (rec) wanted.set(rec.id, rec.data);
      }
      const existing = new Map<string, SyncRecord>();
      for (const r of await ctx.records.list(resource.collection, {
        [this.connectionField]: connection.id,
      })) {
        existing.set(r.id, r);
      }
      for (const [id, data] of wanted) {
        const current = existing.get(id);
        const label = `${resource.collection}/${id}`;
        if (!current) diff.missing.push(label);
        else if (canonicalJson(current.data) !== canonicalJson(data)) diff.changed.push(label);
        else continue;
        mutations.push({
          mid: `reconcile:${hash(run, resource.collection, id)}`,
          collection: resource.collection,
          id,
          op: 'put',
          data,
        });
      }
      for (const [id, current] of existing) {
        if (wanted.has(id)) continue;
        diff.extra.push(`${resource.collection}/${id}`);
        mutations.push({
          mid: `reconcile:${hash(run, resource.collection, id, 'delete')}`,
          collection: resource.collection,
          id,
          op: 'delete',
          baseVersion: current.version,
        });
      }
    }
    let repaired = 0;
    let error: string | undefined;
    if (mutations.length > 0) {
      const counted = this.count(mutations, await ctx.mutate(mutations));
      repaired = counted.applied + counted.deleted;
      if (counted.error) error = `${counted.rejected} repair(s) refused: ${counted.error}`;
    }
    this.counts.reconciliations += 1;
    this.counts.repaired += repaired;
    const report = this.report(connection, 'reconcile', reason, started, 'ok', {
      missing: diff.missing.length,
      changed: diff.changed.length,
      extra: diff.extra.length,
      repaired,
      differences: {
        missing: diff.missing.slice(0, REPORT_IDS),
        changed: diff.changed.slice(0, REPORT_IDS),
        extra: diff.extra.slice(0, REPORT_IDS),
      },
      ...(error ? { error } : {}),
    });
    if (mutations.length > 0) {
      await ctx
        .publish({
          type: 'syncbridge.connector_reconciled',
          source: this.provider,
          payload: { connector: this.name, ...report },
        })
        .catch((err: unknown) => ctx.logger.warn({ err }, 'could not publish a reconciliation report'));
    }
    return report;
  }

  /** Raises or clears each connection's staleness alert. */
  private async checkStaleness(): Promise<void> {
    const ctx = this.ctx;
    if (!ctx || this.stopped) return;
    const now = Date.now();
    for (const connection of this.options.connections) {
      const s = this.status.get(connection.id)!;
      const limit = this.limitOf(connection);
      const since = s.lastSuccessAt ?? this.startedAt;
      const stale = now - since > limit;
      if (stale === s.stale) continue;
      s.stale = stale;
      const payload: Record<string, unknown> = {
        connector: this.name,
        connection: connection.id,
        lastSuccessAt: s.lastSuccessAt ? new Date(s.lastSuccessAt).toISOString() : null,
        stalenessLimitMs: limit,
      };
      if (stale) {
        s.staleSince = now;
        this.counts.alerts += 1;
        payload.lastError = s.lastError;
        ctx.logger.warn(payload, 'connection data is stale');
      } else {
        payload.staleForMs = s.staleSince === null ? 0 : now - s.staleSince;
        s.staleSince = null;
      }
      await ctx
        .publish({
          type: stale ? 'syncbridge.connector_stale' : 'syncbridge.connector_fresh',
          source: this.provider,
          priority: stale ? 8 : 5,
          payload,
        })
        .catch((err: unknown) => ctx.logger.warn({ err }, 'could not publish a staleness alert'));
    }
  }

  health(): ConnectorHealth {
    const now = Date.now();
    const circuit = this.breaker.status();
    let state: ConnectorState;
    if (this.stopped) state = 'stopped';
    else if (circuit.state !== 'closed') state = 'circuit_open';
    else if ([...this.status.values()].some((s) => s.retryTimer !== null && s.lastError !== null))
      state = 'backing_off';
    else state = 'running';
    let last: number | null = null;
    let oldest = 0;
    let lastError: string | null = null;
    const connections = this.options.connections.map((c) => {
      const s = this.status.get(c.id)!;
      if (s.lastSuccessAt !== null && (last === null || s.lastSuccessAt > last)) last = s.lastSuccessAt;
      const staleness = now - (s.lastSuccessAt ?? this.startedAt);
      oldest = Math.max(oldest, staleness);
      lastError ??= s.lastError;
      return {
        id: c.id,
        priority: c.priority ?? 'normal',
        lastSuccessAt: s.lastSuccessAt ? new Date(s.lastSuccessAt).toISOString() : null,
        stalenessMs: this.stopped ? null : staleness,
        stalenessLimitMs: this.limitOf(c),
        stale: s.stale,
        staleSince: s.staleSince ? new Date(s.staleSince).toISOString() : null,
        cursor: s.cursor,
        lastError: s.lastError,
        retryAt: s.retryAt ? new Date(s.retryAt).toISOString() : null,
        running: this.running.has(c.id),
        lastRun: s.lastRun,
        lastReconciliation: s.lastReconciliation,
      };
    });
    return {
      state,
      lastSuccessAt: last === null ? null : new Date(last).toISOString(),
      lastError,
      stalenessMs: this.stopped ? null : oldest,
      stale: connections.some((c) => c.stale),
      details: {
        provider: this.provider,
        circuit,
        schedule: this.options.schedule ?? null,
        nextRunAt: this.crons[0]?.nextRun()?.toISOString() ?? null,
        reconcileSchedule: this.options.reconcileSchedule ?? null,
        queued: this.queue.length,
        running: this.running.size,
        connections,
      },
    };
  }

  metrics(): Record<string, number> {
    const circuit = this.breaker.status().state;
    return {
      runs_total: this.counts.runs,
      runs_failed_total: this.counts.failed,
      runs_skipped_total: this.counts.skipped,
      records_applied_total: this.counts.applied,
      records_duplicate_total: this.counts.duplicates,
      records_deleted_total: this.counts.deleted,
      records_rejected_total: this.counts.rejected,
      reconciliations_total: this.counts.reconciliations,
      repaired_total: this.counts.repaired,
      stale_alerts_total: this.counts.alerts,
      stale_connections: [...this.status.values()].filter((s) => s.stale).length,
      circuit_open: circuit === 'closed' ? 0 : 1,
      queued: this.queue.length,
    };
  }

  async stop(): Promise<void> {
    this.stopped = true;
    for (const cron of this.crons) cron.stop();
    this.crons = [];
    if (this.staleTimer) clearInterval(this.staleTimer);
    this.staleTimer = null;
    for (const s of this.status.values()) {
      if (s.retryTimer) clearTimeout(s.retryTimer);
      s.retryTimer = null;
      s.retryAt = null;
    }
    const queued = this.queue.splice(0);
    for (const job of queued) {
      const report = this.report(job.connection, job.kind, job.reason, Date.now(), 'skipped', {
        error: 'stopped',
      });
      for (const w of job.waiters) w(report);
    }
    this.abort.abort();
    await Promise.allSettled([...this.inFlight]);
  }
}
