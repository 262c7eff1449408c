/**
 * Tick retention: stored ticks older than `days` are deleted once at start and then every `intervalMs`,
 * in small transactions so feeds keep writing meanwhile. Every node may run it: a delete is idempotent,
 * and a node finding the rows gone deletes nothing.
 */
import type { Logger } from 'pino';
import type { ConnectorStore } from './store.ts';

const DAY_MS = 86_400_000;
/** Rows per delete transaction. */
const CHUNK = 5000;

export interface TickRetentionOptions {
  /** Ticks older than this many days go; 0 keeps them forever. */
  days: number;
  intervalMs: number;
}

export class TickRetention {
  private timer: NodeJS.Timeout | null = null;
  private running: Promise<number> | null = null;
  private closed = false;

  constructor(
    private readonly store: ConnectorStore,
    private readonly options: TickRetentionOptions,
    private readonly logger: Logger,
    private readonly onPruned: (rows: number) => void,
  ) {}

  start(): void {
    if (this.options.days <= 0 || this.timer || this.closed) return;
    this.timer = setInterval(() => void this.run(), this.options.intervalMs);
    this.timer.unref();
    void this.run();
  }

  /** One pass now (or the one under way); resolves with how many ticks it deleted. */
  run(now = Date.now()): Promise<number> {
    if (this.running) return this.running;
    const before = now - this.options.days * DAY_MS;
    this.running = this.store
      .pruneTicks(before, CHUNK)
      .then((rows) => {
        if (rows > 0) {
          this.onPruned(rows);
          this.logger.info({ rows, before: new Date(before).toISOString() }, 'old ticks deleted');
        }
        return rows;
      })
      .catch((err: unknown) => {
        this.logger.warn({ err }, 'tick retention pass failed; retrying at the next interval');
        return 0;
      })
      .finally(() => {
        this.running = null;
      });
    return this.running;
  }

  async close(): Promise<void> {
    this.closed = true;
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
    await this.running;
  }
}
