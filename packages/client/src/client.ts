/**
 * SyncClient: the SDK's entry point. It builds the link to the server (link.ts), the request tracker,
 * the replica, the write path (caches and offline queue, client-writes.ts), the channel plumbing
 * (client-channels.ts), the conflict desk (client-conflicts.ts) and the session that ties them to the
 * link (client-session.ts), and is the only place that knows all of them. Nothing here touches a
 * socket or storage directly.
 *
 * @example
 * const client = new SyncClient({ url: 'ws://127.0.0.1:4025/v1/realtime', token: () => fetchToken() });
 * const todos = client.collection<Todo>('todos');
 * const off = todos.subscribe((records) => render(records));
 * await todos.put('t1', { title: 'x', done: false });
 */
import type { Conflict, MutationResult, NewDomainEvent, ServerMessage } from '@syncbridge/protocol';
import { ChannelHub } from './client-channels.ts';
import { ConflictDesk } from './client-conflicts.ts';
import type {
  ClientEvents,
  ConflatedCatchUp,
  PublishResult,
  Resolution,
  SyncClientOptions,
} from './client-options.ts';
import { httpBaseOf } from './client-options.ts';
import { Session } from './client-session.ts';
import { WritePath } from './client-writes.ts';
import type { ConnectionState, Transport } from './codes.ts';
import type { Collection } from './collection.ts';
import type { ConflictHandler } from './conflicts.ts';
import { TypedEventEmitter } from './emitter.ts';
import { SyncClientError } from './errors.ts';
import type { EventStream, EventStreamFilter } from './events.ts';
import { ClientClock } from './hlc.ts';
import { type ClientLink, createLink } from './link.ts';
import { LocalReplica } from './replica.ts';
import { RequestTracker } from './requests.ts';
import { resolveScope } from './scope.ts';
import { MemoryStorage } from './storage/memory.ts';
import { hasReplica, type QueueStorage } from './storage/types.ts';
import type { TopicOptions, TopicStream } from './topics.ts';

export {
  type ClientEvents,
  type ConflatedCatchUp,
  httpBaseOf,
  type PublishResult,
  type Resolution,
  type ServerPending,
  type SyncClientOptions,
  type WriteOutcome,
} from './client-options.ts';

export class SyncClient {
  private readonly emitter = new TypedEventEmitter<ClientEvents>();
  private readonly link: ClientLink;
  private readonly requests: RequestTracker;
  private readonly storage: QueueStorage;
  private readonly clock: ClientClock;
  private readonly replica: LocalReplica | null;
  private readonly writes: WritePath;
  private readonly channels: ChannelHub;
  private readonly conflictDesk: ConflictDesk;
  private readonly session: Session;
  private readonly loading: Promise<void>;
  private closing: Promise<void> | null = null;
  /** What is left to restore after a first page (`replicaFirstPage`), or null. */
  private restRestore: (() => void) | null = null;

  constructor(options: SyncClientOptions) {
    const urls = Array.isArray(options.url) ? options.url : [options.url];
    const firstPage = options.replicaFirstPage;
    if (firstPage !== undefined && !(Number.isInteger(firstPage) && firstPage >= 0)) {
      throw new TypeError('replicaFirstPage must be a non-negative integer');
    }
    const emitter = this.emitter;
    this.storage = options.storage ?? new MemoryStorage();
    this.storage.reportErrorsTo?.((error) => emitter.emit('error', error));
    this.clock = new ClientClock(options.deviceId ?? crypto.randomUUID().slice(0, 8));
    const scoped = resolveScope(options.replicaKey, options.token);
    const link = createLink({
      urls,
      token: scoped.token,
      deviceId: options.deviceId,
      device: options.device,
      capabilities: options.batch === false ? [] : ['batch'],
      compression: options.compression,
      backoff: options.backoff,
      connectTimeoutMs: options.connectTimeoutMs,
      WebSocket: options.WebSocket,
      transports: options.transports,
      fallbackTimeoutMs: options.fallbackTimeoutMs,
      fetch: options.fetch,
    });
    this.link = link;
    this.requests = new RequestTracker((message) => link.send(message));
    const storage = this.storage;
    this.replica = hasReplica(storage)
      ? new LocalReplica({
          storage,
          scope: scoped.scope,
          maxBytes: options.replicaMaxBytes ?? 64 * 1024 * 1024,
          serverEntry: (collection, id) => this.writes.caches.get(collection)?.serverEntry(id),
          resumePoints: () => this.channels.resumePoints(),
          onError: (error) => emitter.emit('error', error),
          holdWrites: () => this.restRestore !== null,
          firstPage,
        })
      : null;
    this.writes = new WritePath({
      storage,
      requests: this.requests,
      isConnected: () => link.authenticated,
      clock: this.clock,
      emitter,
      maxMessageBytes: options.maxMessageBytes ?? 1024 * 1024,
      scope: scoped.scope,
      recordChanged: (collection, id) => this.replica?.recordChanged(collection, id),
      conflicted: (result) => this.conflictDesk.conflicted(result),
      beforeWrite: () => this.finishRestore(),
    });
    const replicaLoaded = (this.replica?.load() ?? Promise.resolve(null)).catch((err: unknown) => {
      // A replica that cannot be read is a cache miss, never a reason to stop: report it, carry on.
      emitter.emit(
        'error',
        err instanceof SyncClientError
          ? err
          : new SyncClientError('STORAGE', `cannot read the replica: ${String(err)}`),
      );
      return null;
    });
    this.loading = Promise.all([this.writes.queue.loaded(), replicaLoaded]).then(([items, state]) => {
      if (firstPage === undefined) {
        this.writes.restore(items, state);
        return;
      }
      // Set before the first page is shown: a listener may write from inside that first change.
      this.restRestore = () => {
        this.writes.restoreRest();
        try {
          this.writes.restoreMore(this.replica?.loadRest() ?? []);
        } catch (err) {
          emitter.emit(
            'error',
            err instanceof SyncClientError
              ? err
              : new SyncClientError('STORAGE', `cannot read the replica: ${String(err)}`),
          );
        }
      };
      this.writes.restore(items, state, firstPage);
      // The first page is shown; the rest comes in a task of its own, after the app could render.
      return new Promise<void>((resolve) =>
        setTimeout(() => {
          this.finishRestore();
          resolve();
        }, 0),
      );
    });
    this.loading.catch(() => undefined);
    const httpUrl = options.httpUrl?.replace(/\/$/, '') ?? httpBaseOf(urls[0]!);
    this.channels = new ChannelHub({
      link,
      requests: this.requests,
      writes: this.writes,
      replica: this.replica,
      emitter,
      loading: this.loading,
      rest: { httpUrl, token: () => link.currentToken },
    });
    this.conflictDesk = new ConflictDesk({
      emitter,
      httpUrl,
      token: () => link.currentToken,
      resolve: (id, resolution, data) => this.resolve(id, resolution, data),
    });
    this.session = new Session({
      link,
      requests: this.requests,
      subscriptions: this.channels.subscriptions,
      writes: this.writes,
      conflicts: this.conflictDesk,
      clock: this.clock,
      emitter,
      deviceId: options.deviceId,
      loading: this.loading,
    });
    if (options.autoConnect !== false) queueMicrotask(() => this.connect());
  }

  /** The connection state: `connecting`, `syncing`, `open`, `offline` or `closed`. */
  get state(): ConnectionState {
    return this.link.state;
  }

  /** The transport of the current (or next) connection: `websocket` or `sse`. */
  get transport(): Transport {
    return this.link.transport;
  }

  /**
   * Starts connecting: needed with `autoConnect: false`, after `disconnect()`, or to retry at once while
   * offline.
   */
  connect(): void {
    if (this.closing) return;
    this.link.connect();
  }

  /**
   * Goes offline on purpose (airplane mode, a "pause sync" switch) until `connect()`: the socket closes,
   * nothing reconnects, reads keep coming from the cache and writes keep queueing.
   */
  disconnect(): void {
    if (this.closing) return;
    this.channels.subscriptions.flushAck();
    this.link.disconnect();
  }

  /**
   * Listens to `status` (every state transition, with a reason), `result` (every write's outcome),
   * `conflict` (an open conflict of this user's writes, with base, server and client data),
   * `conflictResolved`, `pending` (the server's count for this device on connect), `queue` (the number of
   * queued writes changed), `error` and `reset`.
   * Returns an unsubscribe function.
   * @example client.on('status', ({ oldState, newState, reason }) => console.log(oldState, '->', newState, reason));
   */
  on<K extends keyof ClientEvents>(type: K, listener: (payload: ClientEvents[K]) => void): () => void {
    return this.emitter.on(type, listener);
  }

  /**
   * A collection of records with a local cache and optimistic writes.
   * @example const todos = client.collection<{ title: string; done: boolean }>('todos');
   */
  collection<T extends object = Record<string, unknown>>(name: string): Collection<T> {
    return this.channels.collection(name) as Collection<T>;
  }

  /**
   * The stream of domain events of one type (`'*'` for all), optionally narrowed by platform.
   * @example client.events('trade_closed').subscribe((e) => console.log(e.payload));
   */
  events<P = unknown>(type: string, filter?: EventStreamFilter): EventStream<P> {
    return this.channels.events<P>(type, filter);
  }

  /**
   * A connector's high-rate feed (`topic:<name>`, e.g. market ticks), optionally for some symbols: each
   * symbol's latest tick and depth, kept current live and refilled after every reconnect. Call
   * `close()` on the stream to leave it.
   * @example
   * const prices = client.topic('prices', { symbols: ['EURUSD'] });
   * prices.on('tick', (t) => console.log(t.symbol, t.price));
   * await prices.whenReady();
   * console.log(prices.latest('EURUSD')?.price);
   */
  topic(name: string, options?: TopicOptions): TopicStream {
    return this.channels.topic(name, options);
  }

  /**
   * Appends a domain event to the log. Needs a live connection: rejects with `DISCONNECTED` while
   * offline (or when the connection drops before the answer; retry with an `idempotencyKey` to be safe)
   * and `CLOSED` after `close()`.
   * @example const { seq } = await client.publish({ type: 'trade_closed', payload: { id: 't1' }, idempotencyKey: 't1' });
   */
  async publish(event: NewDomainEvent): Promise<PublishResult> {
    const reply = await this.request({ type: 'publish', event });
    if (reply.type !== 'ok')
      throw new SyncClientError('INTERNAL', `unexpected reply ${reply.type} to publish`);
    const result: PublishResult = { seq: reply.seq, eventId: reply.eventId };
    if (reply.duplicate) result.duplicate = true;
    return result;
  }

  /**
   * Resolves a stored conflict: `accept_local` (the write that conflicted wins), `accept_server` (the
   * server's version stays) or `merge` with the merged `data`. Resolves with the result: `applied` (the
   * cache takes the record it produced), or `rejected` with error `CONFLICT` when the record changed
   * since the conflict was stored (the conflict stays open and is reported again with the new server
   * side). Rejects with `NOT_FOUND`, `FORBIDDEN`, `CONFLICT` (already resolved) or `BAD_REQUEST` (merge
   * without data), and with `DISCONNECTED` while offline: a resolution is not queued.
   * @example const result = await client.resolve(conflict.id, 'merge', { ...conflict.server, qty: 4 });
   */
  async resolve(
    conflictId: string,
    resolution: Resolution,
    data?: Record<string, unknown>,
  ): Promise<MutationResult> {
    const reply = await this.request({ type: 'resolve', conflictId, resolution, ...(data ? { data } : {}) });
    const result = reply.type === 'results' ? reply.results[0] : undefined;
    if (!result) throw new SyncClientError('INTERNAL', `unexpected reply ${reply.type} to resolve`);
    if (result.record) {
      this.finishRestore();
      this.clock.observe(result.record.hlc);
      this.writes.cache(result.record.collection).applyRecord(result.record, result.seq ?? 0);
    }
    return result;
  }

  /**
   * Handles open conflicts (of one collection, with `options.collection`): the handler gets each with
   * its base, server and client data, and may return a decision that the client then sends with
   * `resolve` (failures go to the `error` event). Returns the function that removes it.
   * @example
   * client.onConflict((c) => ({ resolution: 'merge', data: { ...c.server, ...c.client, qty: c.server.qty } }), { collection: 'stock' });
   */
  onConflict(handler: ConflictHandler, options: { collection?: string } = {}): () => void {
    return this.conflictDesk.add(handler, options);
  }

  /** The open conflicts of this user's writes that the client knows of, oldest first. */
  conflicts(): Conflict[] {
    return this.conflictDesk.tracker.list();
  }

  /**
   * What the server reported waiting for this device after its cursor when it last connected (record
   * changes in its categories), or null before that (or without a `deviceId`). See the `pending` event
   * for the full report.
   */
  get serverPending(): number | null {
    return this.session.pendingReport?.count ?? null;
  }

  /**
   * The catch-up windows the server conflated on this connection (a device registered with
   * `conflate: true`): empty when every version was sent. Cleared on each reconnect.
   */
  get conflated(): readonly ConflatedCatchUp[] {
    return this.session.conflated;
  }

  /** How many writes wait for their result (queued offline, or on the wire). */
  pendingCount(): number {
    return this.writes.queue.pendingCount();
  }

  /**
   * Resolves once what the storage held is loaded: the replica's records and the writes queued by an
   * earlier client are in the cache (one `storage` change per collection, pending writes applied on
   * top; two with `replicaFirstPage`, the first page then the rest) and in `pendingCount()`. Rejects
   * with `STORAGE` when the queue cannot be read.
   * @example await client.whenLoaded(); console.log(client.pendingCount(), 'writes waiting');
   */
  whenLoaded(): Promise<void> {
    return this.loading;
  }

  /**
   * Resolves once every write made so far is in the storage (its promise still waits for the server's
   * result), and the replica holds what the client has received so far. `close()` waits for the same, so this is for apps that want to know before that: say
   * "saved on this device" or let a mobile OS suspend the app.
   * @example void todos.put('t1', { title: 'x', done: false }); await client.persisted();
   */
  async persisted(): Promise<void> {
    this.finishRestore();
    await Promise.all([this.writes.queue.persisted(), this.replica?.persisted()]);
  }

  /** Resolves when every queued write has its result. */
  flush(): Promise<void> {
    return this.writes.queue.flush();
  }

  /** Resolves when the connection is `open` (in sync); rejects on `close()` or after `timeoutMs`. */
  whenOpen(timeoutMs?: number): Promise<void> {
    return this.session.whenOpen(timeoutMs);
  }

  /**
   * Closes the connection and the storage. Every write made before it is stored first, however soon
   * after the writes `close()` is called; writes still queued stay in the storage (a FileStorage or
   * IndexedDbStorage sends them from the next client), and their promises reject with `CLOSED`.
   */
  close(): Promise<void> {
    this.closing ??= (async () => {
      this.finishRestore();
      const error = new SyncClientError('CLOSED', 'the client was closed before the server answered');
      this.writes.queue.close(error);
      this.requests.failAll('CLOSED', 'the client is closed');
      this.channels.subscriptions.flushAck();
      // Captured before the subscriptions are forgotten: their cursors go with the records.
      const replicaDone = this.replica?.close();
      this.channels.subscriptions.clear();
      await this.link.close();
      await Promise.all([this.writes.queue.persisted(), replicaDone]);
      await this.storage.close();
    })();
    return this.closing;
  }

  /** Restores what is left after a first page, now (before a write, a resolution, `persisted` or `close`). */
  private finishRestore(): void {
    const rest = this.restRestore;
    if (!rest) return;
    this.restRestore = null;
    rest();
  }

  private async request(message: Parameters<RequestTracker['request']>[0]): Promise<ServerMessage> {
    if (this.state === 'closed') throw new SyncClientError('CLOSED', 'the client is closed');
    if (!this.link.authenticated) {
      throw new SyncClientError('DISCONNECTED', `not connected to the server (state ${this.state})`);
    }
    return this.requests.request(message);
  }
}
