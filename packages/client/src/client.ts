/**
 * SyncClient: the SDK's entry point. It wires the connection state machine, request tracking,
 * channel subscriptions, the record caches and the offline queue together, and is the only place that
 * knows all of them. Nothing here touches a socket or storage directly.
 *
 * @example
 * const client = new SyncClient({ url: 'ws://127.0.0.1:4025/v1/realtime', token: () => fetchToken() });
 * const todos = client.collection<Todo>('todos');
 * const off = todos.subscribe((records) => render(records));
 * await todos.put('t1', { title: 'x', done: false });
 */
import {
  CLOSE_CODES,
  type Conflict,
  type DeviceInfo,
  type DevicePending,
  type Mutation,
  type MutationResult,
  type NewDomainEvent,
  type ServerMessage,
} from '@syncbridge/protocol';
import type { BackoffOptions } from './backoff.ts';
import { CollectionCache } from './cache.ts';
import type { ConnectionState, StatusChange } from './codes.ts';
import { Collection, type WriteRequest } from './collection.ts';
import { type ConflictHandler, ConflictTracker } from './conflicts.ts';
import { Connection, type TokenSource } from './connection.ts';
import { TypedEventEmitter } from './emitter.ts';
import { SyncClientError } from './errors.ts';
import { EventStream, type EventStreamFilter, eventsChannel } from './events.ts';
import { type RecordFilter, recordsChannel } from './filters.ts';
import { ClientClock } from './hlc.ts';
import { writeProblem } from './mutation-check.ts';
import { jsonBytes, MutationQueue } from './queue.ts';
import { LocalReplica } from './replica.ts';
import { RequestTracker } from './requests.ts';
import { resolveScope } from './scope.ts';
import { MemoryStorage } from './storage/memory.ts';
import { hasReplica, type QueuedMutation, type QueueStorage, type ReplicaState } from './storage/types.ts';
import { type ResumePoint, SubscriptionManager } from './subscriptions.ts';
import { type TopicOptions, TopicStream, topicChannel } from './topics.ts';
import type { WebSocketConstructor } from './transport.ts';

export interface SyncClientOptions {
  /** The server's realtime endpoint, or several to fail over between in turn. */
  url: string | string[];
  /** A token, or a function returning a fresh one (called for every connection attempt). */
  token: TokenSource;
  /**
   * Where the offline queue and the replica live: `FileStorage` (Node), `IndexedDbStorage` (browsers),
   * or `MemoryStorage`, the default (lost when the process ends). A `QueueStorage` of your own without
   * the replica methods keeps the queue only.
   */
  storage?: QueueStorage;
  /**
   * Whose data the replica holds. Default: the token's `tenant` and `sub` claims (read without
   * verifying; a token function is called once at start for them). Give it when a token function cannot
   * answer offline, e.g. the signed-in user's id; a storage opened with another key wipes the replica.
   */
  replicaKey?: string;
  /** The replica's size limit; least recently used channels not subscribed now are evicted past it. Default 64 MiB. */
  replicaMaxBytes?: number;
  /** A stable id for this installation; the server keeps its acknowledged cursor under it. */
  deviceId?: string;
  /**
   * Registers this installation as a device (needs `deviceId`) in every `hello`: type, name, platform,
   * app version, capabilities, and `categories`, the collections it syncs (the server refuses the
   * others' records channels with FORBIDDEN). Fields left out keep what the server has.
   */
  device?: DeviceInfo;
  /** Let the server send several events of a channel in one `events` frame. Default true. */
  batch?: boolean;
  /** Ask the server for permessage-deflate (frames of 1 KiB and more compressed). Default false. */
  compression?: boolean;
  /**
   * The server's HTTP base URL, for the few REST calls the client makes (a conflict's details when its
   * `conflict` frame was missed). Default: derived from the first `url` (ws→http, wss→https).
   */
  httpUrl?: string;
  /** Reconnect backoff: full jitter up to min(capMs, baseMs * 2^attempt). */
  backoff?: BackoffOptions;
  /** A WebSocket implementation; default the global one, else the `ws` package. */
  WebSocket?: WebSocketConstructor;
  /** Give up on a connection attempt not welcomed after this long. Default 10 s. */
  connectTimeoutMs?: number;
  /** Connect at once (default), or wait for `connect()`. */
  autoConnect?: boolean;
  /**
   * The largest message the server accepts (its `SYNCBRIDGE_MAX_FRAME_BYTES`). Default 1 MiB, the
   * server's default. A larger write is refused at once with PAYLOAD_TOO_LARGE; batches stay below it.
   */
  maxMessageBytes?: number;
}

/** A write's outcome, as emitted by the `result` and `conflict` events. */
export interface WriteOutcome {
  mutation: Mutation;
  result: MutationResult;
}

/** What the server reported waiting for this device when it connected (`serverPending` is `count`). */
export type ServerPending = DevicePending & { deviceId: string };

export interface ClientEvents {
  status: StatusChange;
  result: WriteOutcome;
  /** A conflict of this user's writes is open: new, or shown again with a newer server side. */
  conflict: Conflict;
  /** A conflict was resolved (by this client, another device of the user, or an admin). */
  conflictResolved: Conflict;
  /** The server's count of what waits for this device after its cursor, on every connect. */
  pending: ServerPending;
  error: SyncClientError;
  /** The server could not resume a channel from our seq; records channels reload from a snapshot. */
  reset: { channel: string; reason: string };
  /**
   * The number of queued writes changed: a write was queued, answered or dropped, or writes were
   * restored from storage. `pendingCount` is `client.pendingCount()` at that moment.
   */
  queue: { pendingCount: number };
}

export interface PublishResult {
  seq: number;
  eventId: string;
  duplicate?: boolean;
}

export type Resolution = 'accept_local' | 'accept_server' | 'merge';

/** The HTTP base URL of a realtime URL: ws→http, wss→https, without the `/v1/realtime` path. */
export function httpBaseOf(url: string): string {
  const parsed = new URL(url);
  parsed.protocol = parsed.protocol === 'wss:' ? 'https:' : 'http:';
  parsed.pathname = parsed.pathname.replace(/\/v1\/realtime\/?$/, '') || '/';
  parsed.search = '';
  return parsed.toString().replace(/\/$/, '');
}

function effectiveStatus(result: MutationResult): MutationResult['status'] {
  return result.status === 'duplicate' ? (result.originalStatus ?? 'applied') : result.status;
}

export class SyncClient {
  private readonly emitter = new TypedEventEmitter<ClientEvents>();
  private readonly connection: Connection;
  private readonly requests: RequestTracker;
  private readonly subscriptions: SubscriptionManager;
  private readonly queue: MutationQueue;
  private readonly storage: QueueStorage;
  private readonly caches = new Map<string, CollectionCache>();
  private readonly collections = new Map<string, Collection<object>>();
  /** The collection of every write still queued, to find its cache by mid. */
  private readonly collectionOfMid = new Map<string, string>();
  private readonly clock: ClientClock;
  private readonly maxMessageBytes: number;
  private readonly conflictTracker: ConflictTracker;
  private readonly conflictHandlers = new Set<{ handler: ConflictHandler; collection?: string }>();
  private readonly httpUrl: string;
  private readonly deviceId: string | undefined;
  private pendingReport: ServerPending | null = null;
  private pendingThisConnection = false;
  private closing: Promise<void> | null = null;
  private readonly loading: Promise<void>;
  private readonly replica: LocalReplica | null;
  private reportedPendingCount = 0;

  constructor(options: SyncClientOptions) {
    const urls = Array.isArray(options.url) ? options.url : [options.url];
    this.storage = options.storage ?? new MemoryStorage();
    this.storage.reportErrorsTo?.((error) => this.emitter.emit('error', error));
    this.maxMessageBytes = options.maxMessageBytes ?? 1024 * 1024;
    this.clock = new ClientClock(options.deviceId ?? crypto.randomUUID().slice(0, 8));
    this.deviceId = options.deviceId;
    this.httpUrl = options.httpUrl?.replace(/\/$/, '') ?? httpBaseOf(urls[0]!);
    this.conflictTracker = new ConflictTracker({
      opened: (conflict) => this.conflictOpened(conflict),
      resolved: (conflict) => this.emitter.emit('conflictResolved', conflict),
    });
    const scoped = resolveScope(options.replicaKey, options.token);
    this.connection = new Connection({
      urls,
      token: scoped.token,
      deviceId: options.deviceId,
      device: options.device,
      capabilities: options.batch === false ? [] : ['batch'],
      compression: options.compression,
      backoff: options.backoff,
      connectTimeoutMs: options.connectTimeoutMs,
      WebSocket: options.WebSocket,
    });
    this.requests = new RequestTracker((message) => this.connection.send(message));
    const scope = scoped.scope;
    const storage = this.storage;
    this.replica = hasReplica(storage)
      ? new LocalReplica({
          storage,
          scope,
          maxBytes: options.replicaMaxBytes ?? 64 * 1024 * 1024,
          serverEntry: (collection, id) => this.caches.get(collection)?.serverEntry(id),
          resumePoints: () => this.resumePoints(),
          onError: (error) => this.emitter.emit('error', error),
        })
      : null;
    let loaded: () => void = () => undefined;
    const ready = new Promise<void>((resolve) => {
      loaded = resolve;
    });
    this.subscriptions = new SubscriptionManager({
      ready,
      storedCursor: (channel) => this.replica?.storedCursor(channel) ?? null,
      onCursor: () => this.replica?.cursorChanged(),
      onAcquire: (channel) => this.replica?.channelUsed(channel),
      onRelease: () => this.replica?.channelReleased(),
      requests: this.requests,
      send: (message) => this.connection.send(message),
      isConnected: () => this.connection.authenticated,
      onReset: (channel, reason) => this.emitter.emit('reset', { channel, reason }),
      onError: (error) => this.emitter.emit('error', error),
    });
    this.queue = new MutationQueue({
      storage: this.storage,
      requests: this.requests,
      isConnected: () => this.connection.authenticated,
      onSent: (mid) => this.cacheOfMid(mid)?.markSent(mid),
      onSettled: (item, result) => this.settled(item, result),
      onDropped: (item, error) => {
        this.collectionOfMid.delete(item.mid);
        this.cache(item.mutation.collection).settle(item.mid, null);
        this.queueChanged();
        this.emitter.emit('error', error);
      },
      onError: (error) => this.emitter.emit('error', error),
      maxMessageBytes: this.maxMessageBytes,
      scope,
    });
    const replicaLoaded = (this.replica?.load() ?? Promise.resolve(null)).catch((err: unknown) => {
      // A replica that cannot be read is a cache miss, never a reason to stop: report it, carry on.
      this.emitter.emit(
        'error',
        err instanceof SyncClientError
          ? err
          : new SyncClientError('STORAGE', `cannot read the replica: ${String(err)}`),
      );
      return null;
    });
    this.loading = Promise.all([this.queue.loaded(), replicaLoaded]).then(([items, state]) =>
      this.restore(items, state),
    );
    this.loading.then(loaded, loaded);
    this.loading.catch(() => undefined);
    this.connection.events.on('status', (change) => this.statusChanged(change));
    this.connection.events.on('welcome', () => void this.resume(this.connection.connectionEpoch));
    this.connection.events.on('message', (message) => this.receive(message));
    if (options.autoConnect !== false) queueMicrotask(() => this.connect());
  }

  /** The connection state: `connecting`, `syncing`, `open`, `offline` or `closed`. */
  get state(): ConnectionState {
    return this.connection.state;
  }

  /**
   * Starts connecting: needed with `autoConnect: false`, after `disconnect()`, or to retry at once while
   * offline.
   */
  connect(): void {
    if (this.closing) return;
    this.connection.connect();
  }

  /**
   * Goes offline on purpose (airplane mode, a "pause sync" switch) until `connect()`: the socket closes,
   * nothing reconnects, reads keep coming from the cache and writes keep queueing.
   */
  disconnect(): void {
    if (this.closing) return;
    this.subscriptions.flushAck();
    this.connection.disconnect();
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
    let collection = this.collections.get(name);
    if (!collection) {
      collection = new Collection<object>(name, {
        cache: this.cache(name),
        subscriptions: this.subscriptions,
        write: (request) => this.write(request),
        stored: (filter) => this.storedView(name, filter),
      });
      this.collections.set(name, collection);
    }
    return collection as Collection<T>;
  }

  /**
   * The stream of domain events of one type (`'*'` for all), optionally narrowed by platform.
   * @example client.events('trade_closed').subscribe((e) => console.log(e.payload));
   */
  events<P = unknown>(type: string, filter?: EventStreamFilter): EventStream<P> {
    return new EventStream<P>(eventsChannel(type, filter), this.subscriptions);
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
    return new TopicStream(topicChannel(name, options), this.subscriptions);
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
      this.clock.observe(result.record.hlc);
      this.cache(result.record.collection).applyRecord(result.record, result.seq ?? 0);
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
    const entry = { handler, collection: options.collection };
    this.conflictHandlers.add(entry);
    // Conflicts already open are handed over too, so a handler added late misses none.
    for (const conflict of this.conflictTracker.list()) void this.runConflictHandler(entry, conflict);
    return () => {
      this.conflictHandlers.delete(entry);
    };
  }

  /** The open conflicts of this user's writes that the client knows of, oldest first. */
  conflicts(): Conflict[] {
    return this.conflictTracker.list();
  }

  /**
   * What the server reported waiting for this device after its cursor when it last connected (record
   * changes in its categories), or null before that (or without a `deviceId`). See the `pending` event
   * for the full report.
   */
  get serverPending(): number | null {
    return this.pendingReport?.count ?? null;
  }

  /** How many writes wait for their result (queued offline, or on the wire). */
  pendingCount(): number {
    return this.queue.pendingCount();
  }

  /**
   * Resolves once what the storage held is loaded: the replica's records and the writes queued by an
   * earlier client are in the cache (one `storage` change per collection, pending writes applied on
   * top) and in `pendingCount()`. Rejects with `STORAGE` when the queue cannot be read.
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
    await Promise.all([this.queue.persisted(), this.replica?.persisted()]);
  }

  /** Resolves when every queued write has its result. */
  flush(): Promise<void> {
    return this.queue.flush();
  }

  /** Resolves when the connection is `open` (in sync); rejects on `close()` or after `timeoutMs`. */
  whenOpen(timeoutMs?: number): Promise<void> {
    if (this.state === 'open') return Promise.resolve();
    if (this.state === 'closed') return Promise.reject(new SyncClientError('CLOSED', 'the client is closed'));
    return new Promise((resolve, reject) => {
      const timer =
        timeoutMs === undefined
          ? null
          : setTimeout(() => {
              off();
              reject(new SyncClientError('TIMEOUT', `not open within ${timeoutMs} ms (state ${this.state})`));
            }, timeoutMs);
      const off = this.on('status', ({ newState }) => {
        if (newState !== 'open' && newState !== 'closed') return;
        off();
        if (timer) clearTimeout(timer);
        if (newState === 'open') resolve();
        else reject(new SyncClientError('CLOSED', 'the client is closed'));
      });
    });
  }

  /**
   * Closes the connection and the storage. Every write made before it is stored first, however soon
   * after the writes `close()` is called; writes still queued stay in the storage (a FileStorage or
   * IndexedDbStorage sends them from the next client), and their promises reject with `CLOSED`.
   */
  close(): Promise<void> {
    this.closing ??= (async () => {
      const error = new SyncClientError('CLOSED', 'the client was closed before the server answered');
      this.queue.close(error);
      this.requests.failAll('CLOSED', 'the client is closed');
      this.subscriptions.flushAck();
      // Captured before the subscriptions are forgotten: their cursors go with the records.
      const replicaDone = this.replica?.close();
      this.subscriptions.clear();
      await this.connection.close();
      await Promise.all([this.queue.persisted(), replicaDone]);
      await this.storage.close();
    })();
    return this.closing;
  }

  private async request(message: Parameters<RequestTracker['request']>[0]): Promise<ServerMessage> {
    if (this.state === 'closed') throw new SyncClientError('CLOSED', 'the client is closed');
    if (!this.connection.authenticated) {
      throw new SyncClientError('DISCONNECTED', `not connected to the server (state ${this.state})`);
    }
    return this.requests.request(message);
  }

  private cache(name: string): CollectionCache {
    let cache = this.caches.get(name);
    if (!cache) {
      cache = new CollectionCache(name, (id) => this.replica?.recordChanged(name, id));
      this.caches.set(name, cache);
    }
    return cache;
  }

  private cacheOfMid(mid: string): CollectionCache | undefined {
    const name = this.collectionOfMid.get(mid);
    return name === undefined ? undefined : this.caches.get(name);
  }

  private write(request: WriteRequest): Promise<MutationResult> {
    const cache = this.cache(request.collection);
    const mutation: Mutation = {
      mid: crypto.randomUUID(),
      collection: request.collection,
      id: request.id,
      op: request.op,
      hlc: this.clock.tick(),
    };
    if (request.data !== undefined) mutation.data = request.data;
    const baseVersion = request.op === 'increment' ? undefined : cache.baseVersion(request.id);
    if (baseVersion !== undefined) mutation.baseVersion = baseVersion;
    const problem = writeProblem(mutation.collection, mutation.id, mutation.data);
    if (problem)
      return Promise.reject(new SyncClientError('BAD_REQUEST', `invalid ${request.op}: ${problem}`));
    const bytes = jsonBytes(mutation) + 64;
    if (bytes > this.maxMessageBytes) {
      return Promise.reject(
        new SyncClientError(
          'PAYLOAD_TOO_LARGE',
          `a ${request.op} of ${bytes} bytes exceeds the ${this.maxMessageBytes}-byte message limit`,
        ),
      );
    }
    this.collectionOfMid.set(mutation.mid, mutation.collection);
    cache.addPending({
      mid: mutation.mid,
      id: mutation.id,
      op: mutation.op,
      data: mutation.data,
      sent: false,
    });
    const result = this.queue.enqueue(mutation);
    this.queueChanged();
    // Optimistic writes are often not awaited: a CLOSED or STORAGE rejection must not crash the process
    // as an unhandled rejection. Whoever awaits still gets it; the `result` and `error` events report it too.
    result.catch(() => undefined);
    return result;
  }

  private restore(items: QueuedMutation[], state: ReplicaState | null): void {
    const byCollection = new Map<string, { records: ReplicaState['records']; items: QueuedMutation[] }>();
    const group = (name: string) => {
      let entry = byCollection.get(name);
      if (!entry) {
        entry = { records: [], items: [] };
        byCollection.set(name, entry);
      }
      return entry;
    };
    // Records come grouped by collection from every storage: one lookup per run of a collection.
    let runName: string | null = null;
    let run: ReplicaState['records'] = [];
    for (const record of state?.records ?? []) {
      if (runName !== record.collection) {
        runName = record.collection;
        run = group(runName).records;
      }
      run.push(record);
    }
    for (const item of items) {
      this.collectionOfMid.set(item.mid, item.mutation.collection);
      group(item.mutation.collection).items.push(item);
    }
    for (const [name, { records, items: list }] of byCollection) {
      // Restored writes may have reached the server before the restart: treat them as sent.
      this.cache(name).restore(
        records,
        list.map(({ mid, mutation }) => ({
          mid,
          id: mutation.id,
          op: mutation.op,
          data: mutation.data,
          sent: true,
        })),
      );
    }
    if (items.length > 0) this.queueChanged();
  }

  private queueChanged(): void {
    const pendingCount = this.queue.pendingCount();
    if (pendingCount === this.reportedPendingCount) return;
    this.reportedPendingCount = pendingCount;
    this.emitter.emit('queue', { pendingCount });
  }

  /**
   * Once loaded: does the replica hold this channel (so its records are shown from storage at once)?
   * Resolves false when it does not, or the storage could not be read.
   */
  private async storedView(collection: string, filter: RecordFilter | undefined): Promise<boolean> {
    try {
      await this.loading;
    } catch {
      return false;
    }
    if (!this.replica) return false;
    return this.replica.storedCursor(recordsChannel(collection, filter)) !== null;
  }

  /** The channels to store cursors for; a records channel's stops below updates its cache holds back. */
  private resumePoints(): ResumePoint[] {
    return this.subscriptions.resumePoints().map((point) => {
      if (point.kind !== 'records') return point;
      const collection = point.channel.slice('records:'.length).split('?')[0]!;
      const held = this.caches.get(collection)?.heldMinSeq() ?? null;
      return held === null ? point : { ...point, lastSeq: Math.min(point.lastSeq, held - 1) };
    });
  }

  private settled(item: QueuedMutation, result: MutationResult): void {
    this.collectionOfMid.delete(item.mid);
    this.clock.observe(result.record?.hlc);
    this.cache(item.mutation.collection).settle(item.mid, result);
    this.queueChanged();
    const outcome: WriteOutcome = { mutation: item.mutation, result };
    this.emitter.emit('result', outcome);
    const id = result.conflictId;
    if (effectiveStatus(result) === 'conflict' && id && !this.conflictTracker.knows(id)) {
      // The server pushes a conflict before answering the write, so this one was missed (the write was
      // answered again after a reconnect): ask for it.
      void this.fetchConflict(id);
    }
  }

  private conflictOpened(conflict: Conflict): void {
    this.emitter.emit('conflict', conflict);
    for (const entry of this.conflictHandlers) void this.runConflictHandler(entry, conflict);
  }

  private async runConflictHandler(
    entry: { handler: ConflictHandler; collection?: string },
    conflict: Conflict,
  ): Promise<void> {
    if (entry.collection !== undefined && entry.collection !== conflict.collection) return;
    try {
      const decision = await entry.handler(conflict);
      // Another handler (or a person) may have settled it meanwhile, or a newer server side arrived.
      if (!decision || this.conflictTracker.get(conflict.id) !== conflict) return;
      await this.resolve(conflict.id, decision.resolution, decision.data);
    } catch (err) {
      this.emitter.emit(
        'error',
        err instanceof SyncClientError
          ? err
          : new SyncClientError('INTERNAL', `conflict handler failed: ${(err as Error)?.message ?? err}`),
      );
    }
  }

  /** Reads a conflict over REST (`GET /v1/conflicts/{id}`) and reports it. */
  private async fetchConflict(id: string): Promise<void> {
    try {
      const token = this.connection.currentToken;
      const res = await fetch(`${this.httpUrl}/v1/conflicts/${encodeURIComponent(id)}`, {
        headers: token ? { authorization: `Bearer ${token}` } : {},
      });
      if (!res.ok) throw new Error(`HTTP ${res.status}`);
      this.conflictTracker.observe((await res.json()) as Conflict);
    } catch (err) {
      this.emitter.emit(
        'error',
        new SyncClientError('UNAVAILABLE', `cannot read conflict ${id}: ${(err as Error)?.message ?? err}`),
      );
    }
  }

  private async resume(epoch: number): Promise<void> {
    this.pendingThisConnection = false;
    await this.loading.catch(() => undefined);
    if (epoch !== this.connection.connectionEpoch) return;
    await Promise.all([this.subscriptions.resumeAll(), this.queue.replay(), this.pendingReported()]);
    this.connection.markSynced(epoch);
  }

  /**
   * With a device id, the server follows `welcome` with `pending`: `open` waits for it, so `serverPending`
   * is current once the client is open (at most 2 s, for servers that do not send it).
   */
  private pendingReported(): Promise<void> {
    if (!this.deviceId || this.pendingThisConnection) return Promise.resolve();
    return new Promise((resolve) => {
      const timer = setTimeout(done, 2000);
      const off = this.emitter.on('pending', done);
      function done() {
        clearTimeout(timer);
        off();
        resolve();
      }
    });
  }

  private receive(message: ServerMessage): void {
    if (message.type === 'event') this.clock.observe(message.hlc);
    if (message.type === 'conflict') {
      this.conflictTracker.observe(message.conflict);
      return;
    }
    if (message.type === 'pending') {
      const { type: _type, ...report } = message;
      this.pendingReport = report;
      this.pendingThisConnection = true;
      this.emitter.emit('pending', report);
      return;
    }
    if (this.subscriptions.handle(message)) return;
    if (this.requests.handleReply(message)) return;
    if (message.type === 'error') {
      this.emitter.emit('error', new SyncClientError(message.code, message.message, message.details));
    }
  }

  private statusChanged(change: StatusChange): void {
    if (change.closeCode === CLOSE_CODES.TOO_BIG) this.queue.sendInFlightAlone();
    if (change.newState === 'offline' || change.newState === 'closed') {
      this.requests.failAll('DISCONNECTED', `connection lost (${change.reason})`);
    }
    if (change.newState === 'closed' && change.reason !== 'client_closed') {
      const error = new SyncClientError('UNAUTHORIZED', change.message ?? 'the server refused the token');
      this.queue.close(new SyncClientError('CLOSED', `the client stopped: ${error.message}`));
      this.emitter.emit('error', error);
    }
    this.emitter.emit('status', change);
  }
}
