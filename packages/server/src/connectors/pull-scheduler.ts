/**
 * The run queue of a pull connector: runs of its connections, `concurrency` at a time, in priority order
 * (triggered runs ahead of scheduled ones, critical connections first). A run of the same connection and
 * kind already waiting is joined rather than queued twice, and one connection never runs twice at once.
 */
import type { Priority, PullConnection } from './config.ts';
import { type RunKind, type RunReport, runReport } from './pull-records.ts';

export const PRIORITY: Record<Priority, number> = { critical: 0, high: 1, normal: 2, low: 3 };
/** Triggered runs (webhooks, the trigger route) go before scheduled ones, critical ones first. */
export const URGENT = -10;

export interface Job {
  connection: PullConnection;
  kind: RunKind;
  priority: number;
  order: number;
  reason: string;
  waiters: Array<(report: RunReport) => void>;
}

export interface RunQueueOptions {
  concurrency: number;
  stopped: () => boolean;
  run: (job: Job) => Promise<RunReport>;
}

export class RunQueue {
  private readonly queue: Job[] = [];
  /** The job running for each connection. */
  readonly running = new Map<string, Job>();
  private order = 0;
  private readonly inFlight = new Set<Promise<void>>();

  constructor(private readonly o: RunQueueOptions) {}

  /** Runs waiting for their turn. */
  get length(): number {
    return this.queue.length;
  }

  /** Queues runs of several connections, then starts them in priority order. */
  enqueueAll(connections: PullConnection[], kind: RunKind, reason: string, boost = 0): Promise<RunReport[]> {
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
    if (this.o.stopped()) {
      return Promise.resolve(
        runReport(connection, kind, reason, Date.now(), 'skipped', { error: 'stopped' }),
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
    const concurrency = this.o.concurrency;
    while (this.running.size < concurrency && !this.o.stopped()) {
      const index = this.queue.findIndex((j) => !this.running.has(j.connection.id));
      if (index < 0) return;
      const job = this.queue.splice(index, 1)[0]!;
      this.running.set(job.connection.id, job);
      const done = this.o.run(job).then((report) => {
        this.running.delete(job.connection.id);
        for (const w of job.waiters) w(report);
        this.pump();
      });
      this.inFlight.add(done);
      void done.finally(() => this.inFlight.delete(done));
    }
  }

  /** Answers every waiting run `skipped` (the connector stopped). */
  skipWaiting(): void {
    for (const job of this.queue.splice(0)) {
      const report = runReport(job.connection, job.kind, job.reason, Date.now(), 'skipped', {
        error: 'stopped',
      });
      for (const w of job.waiters) w(report);
    }
  }

  /** Resolves once the runs in flight have ended. */
  async settled(): Promise<void> {
    await Promise.allSettled([...this.inFlight]);
  }
}
