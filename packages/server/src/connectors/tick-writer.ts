/**
 * Batched persistence of ticks: rows gather in memory and are written in one transaction every
 * `flushMs`, or as soon as `flushRows` are waiting, one flush at a time. When the store fails, the rows
 * stay for the next try; past `maxBufferedRows` the oldest are dropped (and counted) rather than
 * letting memory grow while the database is away. A batch refused MAX_TRIES times in a row is dropped
 * (and counted), so one row the store cannot take never holds up every later one.
 */
import type { Logger } from 'pino';
import type { ConnectorStore, TickRow } from './store.ts';
import type { Tick } from './types.ts';

const MAX_TRIES = 5;

export interface TickWriterOptions {
  flushMs: number;
  flushRows: number;
  maxBufferedRows: number;
}

export class TickWriter {
  private buffer: TickRow[] = [];
  private writing: TickRow[] = [];
  private timer: NodeJS.Timeout | null = null;
  private running: Promise<void> | null = null;
  private again = false;
  /** Totals since start. */
  written = 0;
  flushes = 0;
  dropped = 0;
  lastFlushSeconds = 0;
  lastError: string | null = null;
  private failures = 0;

  constructor(
    private readonly store: ConnectorStore,
    private readonly options: TickWriterOptions,
    private readonly logger: Logger,
    private readonly observe?: (rows: number, seconds: number) => void,
  ) {}

  start(): void {
    if (this.timer) return;
    this.timer = setInterval(() => void this.flush(), this.options.flushMs);
    this.timer.unref();
  }

  add(tenant: string, topic: string, ticks: Tick[]): void {
    for (const tick of ticks) this.buffer.push({ ...tick, tenant, topic });
    if (this.buffer.length > this.options.maxBufferedRows) {
      const excess = this.buffer.length - this.options.maxBufferedRows;
      this.buffer.splice(0, excess);
      this.dropped += excess;
    }
    if (this.buffer.length >= this.options.flushRows) void this.flush();
  }

  /** Rows waiting for (or in) a write. */
  get size(): number {
    return this.buffer.length + this.writing.length;
  }

  /** Ticks of a symbol not yet known to be stored, for history answers that include them. */
  pending(tenant: string, topic: string, symbol: string): Tick[] {
    const out: Tick[] = [];
    for (const list of [this.writing, this.buffer]) {
      for (const row of list) {
        if (row.tenant !== tenant || row.topic !== topic || row.symbol !== symbol) continue;
        const { tenant: _t, topic: _p, ...tick } = row;
        out.push(tick);
      }
    }
    return out;
  }

  /** Writes what is waiting; resolves when everything added before the call is written (or failed). */
  flush(): Promise<void> {
    if (this.running) {
      this.again = true;
      return this.running;
    }
    if (this.buffer.length === 0) return Promise.resolve();
    this.running = this.run().finally(() => {
      this.running = null;
      if (this.again) {
        this.again = false;
        if (this.buffer.length > 0) void this.flush();
      }
    });
    return this.running;
  }

  private async run(): Promise<void> {
    while (this.buffer.length > 0) {
      this.writing = this.buffer.splice(0, Math.max(this.options.flushRows, 1));
      const started = performance.now();
      try {
        await this.store.insertTicks(this.writing);
        this.lastFlushSeconds = (performance.now() - started) / 1000;
        this.written += this.writing.length;
        this.flushes += 1;
        this.lastError = null;
        this.observe?.(this.writing.length, this.lastFlushSeconds);
        this.writing = [];
        this.failures = 0;
      } catch (err) {
        this.lastError = (err as Error).message;
        this.failures += 1;
        if (this.failures >= MAX_TRIES) {
          this.logger.error({ err, rows: this.writing.length }, `ticks refused ${MAX_TRIES} times: dropped`);
          this.dropped += this.writing.length;
          this.failures = 0;
        } else {
          this.logger.warn(
            { err, rows: this.writing.length },
            'could not store ticks; keeping them for the next flush',
          );
          this.buffer = [...this.writing, ...this.buffer];
        }
        this.writing = [];
        return;
      }
    }
  }

  async close(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
    if (this.running) await this.running;
    await this.flush();
  }
}
