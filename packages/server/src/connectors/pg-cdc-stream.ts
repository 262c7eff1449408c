/**
 * One replication session of the `pg-cdc` connector: streams a slot's changes (`pgoutput`, decoded by
 * pg-logical-replication over `pg`'s replication mode), gathers each source transaction, hands it to
 * the connector once its COMMIT arrives, and tells PostgreSQL a position only once the connector says
 * it is committed in syncbridge. Keepalives that arrive with nothing pending move the position past WAL
 * of no interest (other tables, other databases), so the slot does not hold it.
 *
 * It must never acknowledge an LSN the connector has not committed: the library's automatic
 * acknowledgements are off, and its standby timer too.
 */
import { LogicalReplicationService, type Pgoutput, PgoutputPlugin } from 'pg-logical-replication';
import { lsnText, lsnValue } from './pg-cdc-map.ts';

/** A source transaction, whole. */
export interface SourceTx {
  /** The commit record's LSN: unique per transaction, the marker of its write group. */
  commitLsn: string;
  /** Where the commit record ends: the position to acknowledge once it is committed here. */
  endLsn: bigint;
  /** Milliseconds since the epoch. */
  commitTimeMs: number;
  changes: Array<
    Pgoutput.MessageInsert | Pgoutput.MessageUpdate | Pgoutput.MessageDelete | Pgoutput.MessageTruncate
  >;
}

export interface StreamHandlers {
  /**
   * Commits transactions in syncbridge, in order, all or none; resolves once committed (then they are
   * acknowledged). Those that arrived while the previous ones were being committed come together.
   */
  transactions(txs: SourceTx[]): Promise<void>;
  /** A keepalive arrived with nothing pending: the stream is caught up to `lsn`. */
  caughtUp(lsn: bigint): void;
  /** Any message arrived (the source is alive). */
  heard(): void;
}

type Item = { kind: 'data'; msg: Pgoutput.Message } | { kind: 'beat'; lsn: bigint; reply: boolean };

const PAUSE_ABOVE = 5000;
const RESUME_BELOW = 500;
/** Most changes committed in one syncbridge transaction (a bigger source transaction still goes whole). */
const MAX_BATCH_CHANGES = 2000;

export class ReplicationStream {
  private readonly service: LogicalReplicationService;
  private queue: Item[] = [];
  private draining = false;
  private paused = false;
  private current: SourceTx | null = null;
  private failure: ((err: unknown) => void) | null = null;
  private stopped = false;
  /** The highest position this session may acknowledge. */
  private confirmed = 0n;

  constructor(
    url: string,
    private readonly slot: string,
    private readonly publication: string,
    private readonly handlers: StreamHandlers,
  ) {
    this.service = new LogicalReplicationService(
      { connectionString: url },
      { acknowledge: { auto: false, timeoutSeconds: 0 }, flowControl: { enabled: false } },
    );
    this.service.on('data', (_lsn: string, msg: Pgoutput.Message) => this.push({ kind: 'data', msg }));
    this.service.on('heartbeat', (lsn: string, _ts: number, reply: boolean) =>
      this.push({ kind: 'beat', lsn: lsnValue(lsn), reply }),
    );
    this.service.on('error', () => {
      // The session's promise (run) carries the error.
    });
  }

  /** Streams until the connection ends: resolves when stopped, rejects with what broke it. */
  run(): Promise<void> {
    const plugin = new PgoutputPlugin({ protoVersion: 1, publicationNames: [this.publication] });
    const failed = new Promise<void>((_, reject) => {
      this.failure = reject;
    });
    // 0/0: PostgreSQL resumes from the slot's confirmed position, the last one acknowledged.
    const streaming = this.service.subscribe(plugin, this.slot, '0/00000000').then(() => {
      if (!this.stopped) throw new Error('the source ended the replication stream');
    });
    return Promise.race([streaming, failed]);
  }

  async stop(): Promise<void> {
    this.stopped = true;
    this.queue = [];
    await this.service.destroy().catch(() => {});
  }

  private push(item: Item): void {
    if (this.stopped) return;
    this.handlers.heard();
    this.queue.push(item);
    if (!this.paused && this.queue.length > PAUSE_ABOVE) {
      this.paused = true;
      this.stream()?.pause?.();
    }
    if (!this.draining) void this.drain();
  }

  /** The socket under the replication connection (pausing it is the only backpressure there is). */
  private stream(): { pause?: () => void; resume?: () => void } | undefined {
    return (
      this.service as unknown as { _connection?: { stream?: { pause?: () => void; resume?: () => void } } }
    )._connection?.stream;
  }

  private async drain(): Promise<void> {
    this.draining = true;
    try {
      while (this.queue.length > 0 && !this.stopped) {
        // Everything already received goes in one batch, up to a size.
        const batch: SourceTx[] = [];
        let changes = 0;
        let beat = 0n;
        let reply = false;
        while (this.queue.length > 0 && changes < MAX_BATCH_CHANGES) {
          const item = this.queue.shift()!;
          if (item.kind === 'beat') {
            // Caught up to the keepalive's position once what came before it is committed.
            if (this.current === null && item.lsn > beat) beat = item.lsn;
            reply ||= item.reply;
            continue;
          }
          const tx = this.take(item.msg);
          if (tx) {
            batch.push(tx);
            changes += tx.changes.length;
          }
        }
        if (batch.length > 0) await this.handlers.transactions(batch);
        const last = batch.at(-1)?.endLsn ?? 0n;
        const reached = last > beat ? last : beat;
        if (reached > this.confirmed) this.confirmed = reached;
        if (beat > 0n && this.current === null && beat >= last) this.handlers.caughtUp(beat);
        if (batch.length > 0 || beat > 0n || reply) this.acknowledge();
        if (this.paused && this.queue.length < RESUME_BELOW) {
          this.paused = false;
          this.stream()?.resume?.();
        }
      }
    } catch (err) {
      this.failure?.(err);
    } finally {
      this.draining = false;
    }
  }

  /** Takes one message; returns the transaction its COMMIT completes. */
  private take(msg: Pgoutput.Message): SourceTx | null {
    switch (msg.tag) {
      case 'begin':
        this.current = {
          commitLsn: msg.commitLsn ?? '0/0',
          endLsn: 0n,
          commitTimeMs: Number(BigInt(msg.commitTime.toString()) / 1000n),
          changes: [],
        };
        return null;
      case 'insert':
      case 'update':
      case 'delete':
      case 'truncate':
        this.current?.changes.push(msg);
        return null;
      case 'commit': {
        const tx = this.current;
        this.current = null;
        if (!tx) return null;
        tx.endLsn = lsnValue(msg.commitEndLsn ?? '0/0');
        return tx;
      }
      default:
        return null;
    }
  }

  /** Tells the source how far syncbridge has committed (exactly that LSN: the library adds one). */
  private acknowledge(): void {
    if (this.confirmed === 0n || this.stopped) return;
    void this.service.acknowledge(lsnText(this.confirmed - 1n)).catch(() => {});
  }
}
