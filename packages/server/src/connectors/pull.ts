/**
 * The scheduled pull connector (`kind: pull`), for providers such as open-banking APIs. This file holds
 * its lifecycle (schedules, triggers, retries, the circuit, health); the run queue is pull-scheduler.ts,
 * a delta sync pull-delta.ts, a reconciliation pull-reconcile.ts, the staleness alerts pull-staleness.ts.
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
import type { LogEvent } from '@syncbridge/protocol';
import { Cron } from 'croner';
import { Backoff } from '../core/backoff.ts';
import { CircuitBreaker, DEFAULT_CIRCUIT } from './circuit-breaker.ts';
import type { PullConnection, PullOptions, PullResource } from './config.ts';
import { getPath } from './json-path.ts';
import { delta, type PullCounts, type PullRun } from './pull-delta.ts';
import { HttpPullProvider, ProviderError, type PullProvider, type TemplateVariables } from './pull-http.ts';
import { reconcile } from './pull-reconcile.ts';
import { type RunKind, type RunReport, runReport } from './pull-records.ts';
import { type Job, RunQueue, URGENT } from './pull-scheduler.ts';
import { checkStaleness, type Freshness, staleCheckEvery, stalenessLimit } from './pull-staleness.ts';
import type {
  Connector,
  ConnectorContext,
  ConnectorHealth,
  ConnectorState,
  TriggerRequest,
  TriggerResult,
} from './types.ts';
import { ConnectorSpecError } from './types.ts';

export type { RunKind, RunReport } from './pull-records.ts';
export { DEFAULT_STALENESS_MS } from './pull-staleness.ts';

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
interface ConnectionStatus extends Freshness {
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
  private readonly queue: RunQueue;
  private crons: Cron[] = [];
  private staleTimer: NodeJS.Timeout | null = null;
  private stopped = true;
  private startedAt = 0;
  private abort = new AbortController();
  private readonly counts: PullCounts = {
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
    this.queue = new RunQueue({
      concurrency: options.concurrency ?? 2,
      stopped: () => this.stopped,
      run: (job) => this.run(job),
    });
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
    return stalenessLimit(this.options, connection);
  }

  /** What a run works with (once started). */
  private runContext(): PullRun {
    const ctx = this.ctx!;
    return {
      name: this.name,
      provider: this.provider,
      options: this.options,
      resources: this.resources,
      connectionField: this.connectionField,
      ctx,
      source: this.source,
      counts: this.counts,
      fetch: (call) => this.fetch(call),
      stopped: () => this.stopped,
    };
  }

  private async checkStaleness(): Promise<void> {
    if (!this.ctx || this.stopped) return;
    await checkStaleness(this.runContext(), this.status, this.startedAt);
  }

  /** Queues runs of several connections, then starts them in priority order. */
  enqueue(connection: PullConnection, kind: RunKind, reason: string): Promise<RunReport> {
    return this.queue.enqueue(connection, kind, reason);
  }

  private enqueueAll(
    connections: PullConnection[],
    kind: RunKind,
    reason: string,
    boost = 0,
  ): Promise<RunReport[]> {
    return this.queue.enqueueAll(connections, kind, reason, boost);
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
    const every = staleCheckEvery(this.options);
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
      const report = runReport(connection, kind, reason, started, 'skipped', {
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
          ? await delta(this.runContext(), connection, s, reason, started)
          : await reconcile(this.runContext(), connection, reason, started);
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
      report = runReport(connection, kind, reason, started, 'failed', { error: message });
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
        running: this.queue.running.has(c.id),
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
        running: this.queue.running.size,
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
    this.queue.skipWaiting();
    this.abort.abort();
    await this.queue.settled();
  }
}
