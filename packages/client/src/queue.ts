/**
 * The offline queue. Every write becomes a queued mutation with a stable `mid`, stored durably before
 * it is sent, and sent (in order, in `mutate` batches of up to 100 and below the server's message size
 * limit) whenever the connection is up.
 * An entry leaves the queue only when its result arrives; until then it is sent again after every
 * reconnect. Sending twice is harmless: the server answers a known `mid` with `duplicate` and the
 * first result, and changes nothing.
 * Each entry is stored with the scope (tenant + user) that wrote it; entries of another scope stay in
 * the storage untouched, for their own user's next client. Entries stored before scopes existed are
 * taken by any scope.
 */
import type { Mutation, MutationResult } from '@syncbridge/protocol';
import { backoffDelay } from './backoff.ts';
import { SyncClientError } from './errors.ts';
import type { RequestTracker } from './requests.ts';
import type { QueuedMutation, QueueStorage } from './storage/types.ts';

const MAX_BATCH = 100;
/** Room for the `mutate` envelope around the mutations' JSON. */
const ENVELOPE_BYTES = 64;
const TRANSIENT: readonly string[] = ['UNAVAILABLE', 'RATE_LIMITED', 'INTERNAL'];

export interface MutationQueueOptions {
  storage: QueueStorage;
  requests: RequestTracker;
  isConnected: () => boolean;
  /** A mutation was handed to the socket: its result may now reflect it. */
  onSent: (mid: string) => void;
  onSettled: (item: QueuedMutation, result: MutationResult) => void;
  /** A mutation could not be stored and was never queued. */
  onDropped: (item: QueuedMutation, error: SyncClientError) => void;
  onError: (error: SyncClientError) => void;
  /** The largest message the server accepts; batches are cut to stay below it. */
  maxMessageBytes: number;
  /** Whose writes these are (null: unknown). Nothing is loaded or stored before it is known. */
  scope: Promise<string | null>;
}

/** The size in bytes of a value's JSON (UTF-8), as it goes on the wire. */
export function jsonBytes(value: unknown): number {
  return new TextEncoder().encode(JSON.stringify(value)).length;
}

type Waiter<T> = { resolve: (value: T) => void; reject: (err: SyncClientError) => void };

interface Entry {
  item: QueuedMutation;
  bytes: number;
  persisted: boolean;
  inFlight: boolean;
  /** Send alone: its batch was refused as a whole, so each entry gets its own answer. */
  solo: boolean;
  waiters: Waiter<MutationResult>[];
}

export class MutationQueue {
  private entries: Entry[] = [];
  private readonly ready: Promise<QueuedMutation[]>;
  private sendScheduled = false;
  private retryTimer: ReturnType<typeof setTimeout> | null = null;
  private retryAttempt = 0;
  private emptyWaiters: Waiter<void>[] = [];
  private closed = false;
  /** Storage writes (appends and removals) not yet settled: `persisted()` and `close()` wait for them. */
  private readonly storing = new Set<Promise<unknown>>();

  private scope: string | null = null;

  constructor(private readonly options: MutationQueueOptions) {
    this.ready = options.scope
      .then(async (scope) => {
        this.scope = scope;
        const all = await options.storage.load();
        return all.filter((item) => item.scope === undefined || item.scope === scope);
      })
      .then(
        (loaded) => {
          const restored = loaded.map((item) => ({
            item,
            bytes: jsonBytes(item.mutation),
            persisted: true,
            inFlight: false,
            solo: false,
            waiters: [],
          }));
          this.entries = [...restored, ...this.entries];
          return loaded;
        },
        (err: unknown) => {
          const error =
            err instanceof SyncClientError
              ? err
              : new SyncClientError('STORAGE', `cannot load the offline queue: ${String(err)}`);
          this.options.onError(error);
          throw error;
        },
      );
    this.ready.catch(() => undefined);
  }

  /** The entries restored from storage, once loaded. */
  loaded(): Promise<QueuedMutation[]> {
    return this.ready;
  }

  pendingCount(): number {
    return this.entries.length;
  }

  /** Queues a mutation (its `mid` set); resolves with the server's result, whenever that arrives. */
  enqueue(mutation: Mutation): Promise<MutationResult> {
    if (this.closed) return Promise.reject(new SyncClientError('CLOSED', 'the client is closed'));
    const item: QueuedMutation = { mid: mutation.mid, mutation, queuedAt: new Date().toISOString() };
    const entry: Entry = {
      item,
      bytes: jsonBytes(mutation),
      persisted: false,
      inFlight: false,
      solo: false,
      waiters: [],
    };
    this.entries.push(entry);
    const result = new Promise<MutationResult>((resolve, reject) => entry.waiters.push({ resolve, reject }));
    const stored = this.ready
      .then(() => {
        if (this.scope !== null) item.scope = this.scope;
        return this.options.storage.append([item]);
      })
      .then(
        () => {
          entry.persisted = true;
          this.scheduleSend();
        },
        (err: unknown) => {
          const error =
            err instanceof SyncClientError
              ? err
              : new SyncClientError('STORAGE', `cannot queue the write: ${String(err)}`);
          this.entries = this.entries.filter((e) => e !== entry);
          this.options.onDropped(item, error);
          for (const w of entry.waiters) w.reject(error);
          this.notifyIfEmpty();
        },
      );
    this.track(stored);
    return result;
  }

  /**
   * Resolves once every write queued so far is in the storage (or was refused by it, which its own
   * promise and the `error` event report), and every settled one is gone from it. Keeps working after
   * `close()`: closing waits on it, so nothing queued is lost however soon the client is closed.
   */
  async persisted(): Promise<void> {
    try {
      await this.ready;
    } catch {
      return;
    }
    while (this.storing.size > 0) await Promise.allSettled([...this.storing]);
  }

  private track(operation: Promise<unknown>): void {
    const settled = operation.then(
      () => undefined,
      () => undefined,
    );
    this.storing.add(settled);
    void settled.then(() => this.storing.delete(settled));
  }

  /** Sends everything queued on a fresh connection; resolves when the first round has been answered. */
  async replay(): Promise<void> {
    try {
      await this.ready;
    } catch {
      return;
    }
    await Promise.all(this.sendPending());
  }

  /** Resolves when the queue (including what was restored from storage) is empty: every write has its result. */
  async flush(): Promise<void> {
    await this.ready;
    if (this.entries.length === 0) return;
    if (this.closed) throw new SyncClientError('CLOSED', 'the client is closed');
    return new Promise((resolve, reject) => this.emptyWaiters.push({ resolve, reject }));
  }

  /** Stops sending; every promise still waiting is rejected with `error` (the entries stay in storage). */
  close(error: SyncClientError): void {
    this.closed = true;
    if (this.retryTimer) clearTimeout(this.retryTimer);
    this.retryTimer = null;
    for (const entry of this.entries) for (const w of entry.waiters.splice(0)) w.reject(error);
    for (const w of this.emptyWaiters.splice(0)) w.reject(error);
  }

  /**
   * The server closed the connection over a frame too large (1009): whatever was on the wire goes out
   * one mutation per message next time, so one oversized write cannot hold back the rest.
   */
  sendInFlightAlone(): void {
    for (const entry of this.entries) if (entry.inFlight) entry.solo = true;
  }

  private scheduleSend(): void {
    if (this.sendScheduled || this.closed) return;
    this.sendScheduled = true;
    queueMicrotask(() => {
      this.sendScheduled = false;
      void Promise.all(this.sendPending());
    });
  }

  private sendPending(): Promise<void>[] {
    if (this.closed || !this.options.isConnected()) return [];
    const sends: Promise<void>[] = [];
    let batch: Entry[] = [];
    let bytes = ENVELOPE_BYTES;
    const cut = () => {
      if (batch.length > 0) sends.push(this.sendBatch(batch));
      batch = [];
      bytes = ENVELOPE_BYTES;
    };
    for (const entry of this.entries) {
      if (!entry.persisted) break; // keep the order: nothing overtakes a write still being stored
      if (entry.inFlight) continue;
      if (entry.solo) {
        cut();
        batch.push(entry);
        cut();
        continue;
      }
      if (batch.length > 0 && bytes + entry.bytes + 1 > this.options.maxMessageBytes) cut();
      batch.push(entry);
      bytes += entry.bytes + 1;
      if (batch.length === MAX_BATCH) cut();
    }
    cut();
    return sends;
  }

  /** Sends one batch and settles its entries; never rejects. */
  private async sendBatch(batch: Entry[]): Promise<void> {
    for (const entry of batch) {
      entry.inFlight = true;
      this.options.onSent(entry.item.mid);
    }
    let results: MutationResult[];
    try {
      const reply = await this.options.requests.request({
        type: 'mutate',
        mutations: batch.map((e) => e.item.mutation),
      });
      results = reply.type === 'results' ? reply.results : [];
    } catch (err) {
      this.batchFailed(batch, err as SyncClientError);
      return;
    }
    this.retryAttempt = 0;
    for (const result of results) this.settle(result.mid, result);
    for (const entry of batch) entry.inFlight = false;
  }

  private batchFailed(batch: Entry[], error: SyncClientError): void {
    for (const entry of batch) entry.inFlight = false;
    if (error.code === 'DISCONNECTED' || error.code === 'CLOSED' || error.code === 'TIMEOUT') return;
    if (TRANSIENT.includes(error.code)) {
      this.scheduleRetry();
      return;
    }
    if (batch.length > 1) {
      // The batch as a whole was refused (too large, or one bad entry): send each alone to find out.
      for (const entry of batch) entry.solo = true;
      this.scheduleSend();
      return;
    }
    const entry = batch[0]!;
    this.settle(entry.item.mid, {
      mid: entry.item.mid,
      status: 'rejected',
      error: { code: error.code, message: error.message },
    });
  }

  private scheduleRetry(): void {
    if (this.retryTimer || this.closed) return;
    const delay = 200 + backoffDelay(this.retryAttempt++, { baseMs: 500, capMs: 10_000 });
    this.retryTimer = setTimeout(() => {
      this.retryTimer = null;
      this.scheduleSend();
    }, delay);
  }

  private settle(mid: string, result: MutationResult): void {
    const index = this.entries.findIndex((e) => e.item.mid === mid);
    if (index < 0) return;
    const [entry] = this.entries.splice(index, 1);
    this.track(
      this.options.storage.remove([mid]).catch((err: unknown) => {
        this.options.onError(
          err instanceof SyncClientError
            ? err
            : new SyncClientError('STORAGE', `cannot update the offline queue: ${String(err)}`),
        );
      }),
    );
    this.options.onSettled(entry!.item, result);
    for (const w of entry!.waiters) w.resolve(result);
    this.notifyIfEmpty();
  }

  private notifyIfEmpty(): void {
    if (this.entries.length > 0) return;
    for (const w of this.emptyWaiters.splice(0)) w.resolve();
  }
}
