/**
 * The client's side of the conflict queue: reports every conflict state the tracker sees (`conflict`,
 * `conflictResolved` events), runs the app's conflict handlers and sends their decisions, and fetches
 * over REST a conflict whose `conflict` frame this client missed.
 */
import type { Conflict, MutationResult } from '@syncbridge/protocol';
import type { ClientEvents, Resolution } from './client-options.ts';
import { type ConflictHandler, ConflictTracker } from './conflicts.ts';
import type { TypedEventEmitter } from './emitter.ts';
import { SyncClientError } from './errors.ts';

export interface ConflictDeskOptions {
  emitter: TypedEventEmitter<ClientEvents>;
  /** The server's HTTP base URL. */
  httpUrl: string;
  /** The token of the current connection, for REST calls. */
  token: () => string | null;
  /** Sends a resolution (`SyncClient.resolve`). */
  resolve: (conflictId: string, resolution: Resolution, data?: Record<string, unknown>) => Promise<unknown>;
}

interface HandlerEntry {
  handler: ConflictHandler;
  collection?: string;
}

export class ConflictDesk {
  readonly tracker: ConflictTracker;
  private readonly handlers = new Set<HandlerEntry>();

  constructor(private readonly options: ConflictDeskOptions) {
    this.tracker = new ConflictTracker({
      opened: (conflict) => this.opened(conflict),
      resolved: (conflict) => options.emitter.emit('conflictResolved', conflict),
    });
  }

  /** Adds a handler; conflicts already open are handed to it too, so a handler added late misses none. */
  add(handler: ConflictHandler, options: { collection?: string }): () => void {
    const entry: HandlerEntry = { handler, collection: options.collection };
    this.handlers.add(entry);
    for (const conflict of this.tracker.list()) void this.run(entry, conflict);
    return () => {
      this.handlers.delete(entry);
    };
  }

  /**
   * A write was answered `conflict`. The server pushes a conflict before answering the write, so one
   * still unknown was missed (the write was answered again after a reconnect): ask for it.
   */
  conflicted(result: MutationResult): void {
    const id = result.conflictId;
    if (id && !this.tracker.knows(id)) void this.fetch(id);
  }

  private opened(conflict: Conflict): void {
    this.options.emitter.emit('conflict', conflict);
    for (const entry of this.handlers) void this.run(entry, conflict);
  }

  private async run(entry: HandlerEntry, conflict: Conflict): Promise<void> {
    if (entry.collection !== undefined && entry.collection !== conflict.collection) return;
    try {
      const decision = await entry.handler(conflict);
      // Another handler (or a person) may have settled it meanwhile, or a newer server side arrived.
      if (!decision || this.tracker.get(conflict.id) !== conflict) return;
      await this.options.resolve(conflict.id, decision.resolution, decision.data);
    } catch (err) {
      this.options.emitter.emit(
        'error',
        err instanceof SyncClientError
          ? err
          : new SyncClientError('INTERNAL', `conflict handler failed: ${(err as Error)?.message ?? err}`),
      );
    }
  }

  /** Reads a conflict over REST (`GET /v1/conflicts/{id}`) and reports it. */
  private async fetch(id: string): Promise<void> {
    try {
      const token = this.options.token();
      const res = await fetch(`${this.options.httpUrl}/v1/conflicts/${encodeURIComponent(id)}`, {
        headers: token ? { authorization: `Bearer ${token}` } : {},
      });
      if (!res.ok) throw new Error(`HTTP ${res.status}`);
      this.tracker.observe((await res.json()) as Conflict);
    } catch (err) {
      this.options.emitter.emit(
        'error',
        new SyncClientError('UNAVAILABLE', `cannot read conflict ${id}: ${(err as Error)?.message ?? err}`),
      );
    }
  }
}
