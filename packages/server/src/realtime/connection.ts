/**
 * One WebSocket connection: authentication, its subscriptions, and the handling of each client message.
 * It must never let one client's bad input or slowness reach another client: every frame is validated,
 * every failure becomes a typed `error` frame, and a reader that falls too far behind is disconnected
 * (with a close code that tells it to resume) instead of growing the server's memory.
 */
import type { Duplex } from 'node:stream';
import {
  type ChannelSpec,
  CLOSE_CODES,
  type ClientMessage,
  type ClientMessageOf,
  type DeviceInfo,
  type LogEvent,
  PROTOCOL_VERSION,
  parseChannel,
  type Rid,
  type ServerMessage,
} from '@syncbridge/protocol';
import type { WebSocket } from 'ws';
import type { Principal } from '../auth/principal.ts';
import type { TopicSubscription } from '../connectors/topics.ts';
import { SyncError, toPublicError } from '../core/errors.ts';
import { isDepthRefusal, nestedDeeperThan } from '../core/json-limits.ts';
import { categoryAllows, DeviceRegistry } from '../devices/registry.ts';
import { subscriberAccess } from '../rules/subscriber.ts';
import { EventBatcher, eventsFrameText, MAX_BATCH_BYTES, MAX_BATCH_EVENTS } from './batch.ts';
import type { RealtimeContext } from './context.ts';
import type { OutboundType } from './counters.ts';
import { DeepSenders } from './deep-senders.ts';
import { eventFrameText, eventJson, Subscription, type SubscriptionSink } from './subscription.ts';
import { leadingRid, parseClientFrame, ridOf } from './validate.ts';

const BACKLOG_PAGE = 500;
const SNAPSHOT_CHUNK = 500;
const MAX_SUBSCRIPTIONS = 1000;
const MAX_PENDING_REQUESTS = 256;
/** Levels of a `mutate` frame around a mutation's data: the message, `mutations`, the mutation. */
const FRAME_ENVELOPE_LEVELS = 3;
/** Refusals per flood window answered with an error frame; later ones are dropped without a word. */
const ANSWERED_REFUSALS = 100;
/** The window over which refusals are counted against `floodCloseAfter`. */
const FLOOD_WINDOW_MS = 10_000;
/** Frames a client may send after `hello` before its answer; more are refused RATE_LIMITED. */
const MAX_HELD_FRAMES = 64;
/**
 * Corked frames past this many bytes are written at once rather than at the end of the tick: enough
 * to batch dozens of small events into one write, small enough that holding them back never moves a
 * connection nearer the slow-consumer limit (maxBufferedBytes is at least 64 KiB).
 */
const CORK_FLUSH_BYTES = 16 * 1024;

/** The key of a device's cursor: tenant, user and device. */
export function cursorKey(tenant: string, user: string, device: string): string {
  return `${tenant}\u0000${user}\u0000${device}`;
}

/** What a `hello` may add to the token: the device's registration and the wire features it speaks. */
export interface HelloExtras {
  device?: DeviceInfo;
  capabilities?: string[];
}

export class Connection implements SubscriptionSink {
  principal: Principal | null = null;
  deviceId: string | undefined;
  /** The collections this connection's device syncs (null: every one); records channels are limited to them. */
  categories: string[] | null = null;
  /** The client speaks `events` batches (capability `batch`). */
  batch = false;
  private batcher: EventBatcher | null = null;
  expiresAt: number | null = null;
  readonly connectedAt = Date.now();
  lastSeen = Date.now();
  lastPingAt = 0;
  ackedSeq = 0;
  ackDirty = false;
  /** `ackedSeq` is beyond every seq this connection was sent: its save checks it against the head. */
  ackUnverified = false;
  /** The highest seq sent outside subscriptions, or by subscriptions since dropped (see highestSeqSent). */
  private sentSeq = 0;
  readonly subscriptions = new Map<string, Subscription>();
  /** `topic:` channel subscriptions, served by the topic hub outside the log. */
  readonly topicSubscriptions = new Map<string, TopicSubscription>();
  private pending = 0;
  private closing = false;
  /** Counted against the user's connection cap (released on dispose). */
  private admitted = false;
  private corkedSocket: Duplex | null = null;
  private floodWindowStart = 0;
  private refusedInWindow = 0;
  /** The first authentication is in progress: frames wait for it in `held`. */
  private holding = false;
  private readonly held: ClientMessage[] = [];

  constructor(
    readonly id: string,
    private readonly ws: WebSocket,
    private readonly ctx: RealtimeContext,
    readonly remoteAddress: string | undefined,
    /** The save of this device's cursor still in flight (from an earlier connection), if any. */
    private readonly pendingCursorSave: (key: string) => Promise<void> | undefined = () => undefined,
    /** Users of this node who sent data nested past the limit (shared by the gateway's connections). */
    private readonly deepSenders: DeepSenders = new DeepSenders(),
  ) {}

  get isOpen(): boolean {
    return !this.closing && this.ws.readyState === 1;
  }

  send(message: ServerMessage): void {
    if (!this.isOpen) return;
    this.noteSeqSent(message);
    this.sendFrame(Buffer.from(JSON.stringify(message)), message.type);
  }

  /** Seqs this connection was told of outside its subscriptions' events: heads, its own writes. */
  private noteSeqSent(message: ServerMessage): void {
    let seq = 0;
    if (message.type === 'subscribed') seq = message.cursor;
    else if (message.type === 'pending') seq = message.head;
    else if (message.type === 'ok') seq = message.seq;
    else if (message.type === 'results') for (const r of message.results) seq = Math.max(seq, r.seq ?? 0);
    if (seq > this.sentSeq) this.sentSeq = seq;
  }

  /** The highest seq of the tenant's log this connection has been sent (or told of): what it may ack. */
  highestSeqSent(): number {
    let seq = Math.max(this.sentSeq, this.ackedSeq);
    for (const sub of this.subscriptions.values()) if (sub.lastSeq > seq) seq = sub.lastSeq;
    return seq;
  }

  /**
   * An `event` frame of `channel` from the fan-out: sent at once, or (capability `batch`) collected until
   * the tick ends and sent with the channel's other events of this tick as one `events` frame.
   */
  sendEventFrame(channel: string, frame: Buffer): boolean {
    if (!this.batch) return this.sendFrame(frame);
    if (!this.isOpen) return false;
    if (!this.batcher) {
      this.batcher = new EventBatcher();
      process.nextTick(() => this.flushBatches());
    }
    this.batcher.add(channel, frame);
    if (this.batcher.full) return this.flushBatches();
    return true;
  }

  /** Sends the batched events collected so far; returns false when the connection can take no more. */
  private flushBatches(): boolean {
    const batcher = this.batcher;
    if (!batcher) return this.isOpen;
    this.batcher = null;
    let ok = true;
    for (const { frame, type } of batcher.take()) ok = this.writeFrame(frame, type) && ok;
    return ok;
  }

  /** Sends a prepared frame of the given type (the type is counted for metrics, never checked). */
  sendFrame(frame: Buffer, type: OutboundType = 'event'): boolean {
    // Anything else sent keeps its place after the events batched before it.
    if (this.batcher) this.flushBatches();
    return this.writeFrame(frame, type);
  }

  private writeFrame(frame: Buffer, type: OutboundType): boolean {
    if (!this.isOpen) return false;
    this.corkUntilTickEnd();
    this.ws.send(frame, { binary: false });
    this.ctx.metrics.frameSent(type, frame.length);
    if (this.corkedSocket && this.corkedSocket.writableLength >= CORK_FLUSH_BYTES) this.uncork();
    if (this.outboundBytes() > this.ctx.config.maxBufferedBytes) {
      this.ctx.metrics.slowConsumers += 1;
      this.close(CLOSE_CODES.SLOW_CONSUMER, 'slow consumer: reconnect and resume from your last seq');
      return false;
    }
    return true;
  }

  /**
   * Frames sent to this connection in one tick (a commit's events fanned out, a backlog page) leave in
   * one write instead of one syscall each: the socket stays corked until the tick ends.
   */
  private corkUntilTickEnd(): void {
    if (this.corkedSocket) return;
    // ws keeps its net.Socket in `_socket`; the cork/uncork pair inside ws.send only counts down.
    const socket = (this.ws as unknown as { _socket?: Duplex })._socket;
    if (!socket) return;
    socket.cork();
    this.corkedSocket = socket;
    if (Connection.corked.push(this) === 1) process.nextTick(Connection.uncorkAll);
  }

  /** Connections corked during this tick: one nextTick uncorks them all. */
  private static readonly corked: Connection[] = [];

  private static uncorkAll(): void {
    for (const conn of Connection.corked.splice(0)) conn.uncork();
  }

  private uncork(): void {
    const socket = this.corkedSocket;
    if (!socket) return;
    this.corkedSocket = null;
    socket.uncork();
  }

  /** Sends a frame and resolves once it has been handed to the kernel, for flow control of backlogs. */
  private sendAndWait(frame: Buffer, type: OutboundType): Promise<void> {
    return new Promise((resolve) => {
      if (!this.isOpen) return resolve();
      this.ws.send(frame, { binary: false }, () => resolve());
      this.ctx.metrics.frameSent(type, frame.length);
      if (this.outboundBytes() > this.ctx.config.maxBufferedBytes) {
        this.ctx.metrics.slowConsumers += 1;
        this.close(CLOSE_CODES.SLOW_CONSUMER, 'slow consumer: reconnect and resume from your last seq');
      }
    });
  }

  /**
   * Bytes sent but not yet taken by the network. With permessage-deflate, frames still waiting for
   * their turn at the compressor are left out: they leave at zlib's pace whatever the reader does, and
   * one large frame would otherwise look like a slow reader. What compression has produced and the
   * reader has not taken is counted as usual.
   */
  outboundBytes(): number {
    if (!this.ws.extensions.includes('permessage-deflate')) return this.ws.bufferedAmount;
    return (this.ws as unknown as { _socket?: Duplex })._socket?.writableLength ?? 0;
  }

  sendError(err: unknown, rid?: Rid): void {
    const pub = toPublicError(err);
    if (pub.code === 'INTERNAL') this.ctx.logger.error({ err, connection: this.id }, 'request failed');
    const message: ServerMessage = { type: 'error', code: pub.code, message: pub.message };
    if (rid !== undefined) message.rid = rid;
    if (pub.details !== undefined) message.details = pub.details;
    this.send(message);
  }

  close(code: number, reason: string): void {
    if (this.closing) return;
    this.closing = true;
    this.ws.close(code, reason);
  }

  ping(): void {
    if (this.isOpen) this.ws.ping();
  }

  terminate(): void {
    this.ws.terminate();
  }

  /** Drops every subscription; called once the socket has closed. */
  dispose(): void {
    if (this.admitted && this.principal) {
      this.admitted = false;
      this.ctx.admission.release(this.principal.tenant, this.principal.user);
    }
    for (const sub of this.subscriptions.values()) {
      sub.close();
      this.ctx.hub.remove(sub);
    }
    this.subscriptions.clear();
    for (const sub of this.topicSubscriptions.values()) sub.close();
    this.topicSubscriptions.clear();
  }

  async authenticate(
    principal: Principal,
    expiresAt: number | null,
    deviceId?: string,
    rid?: Rid,
    extras: HelloExtras = {},
  ): Promise<void> {
    if (
      this.principal &&
      (this.principal.tenant !== principal.tenant || this.principal.user !== principal.user)
    ) {
      throw new SyncError('FORBIDDEN', 'a connection cannot change its tenant or user; open a new one');
    }
    if (extras.device && !(deviceId ?? this.deviceId)) {
      throw new SyncError('BAD_REQUEST', 'a device registration needs a deviceId');
    }
    if (deviceId) this.deviceId = deviceId;
    if (extras.capabilities) this.batch = extras.capabilities.includes('batch');
    const devices = new DeviceRegistry(this.ctx.store, this.ctx.config.retention.maxDevicesPerUser);
    if (this.deviceId) {
      // A registered device (or one registering now) syncs its categories only.
      const device = extras.device
        ? await devices.register(principal.tenant, principal.user, this.deviceId, extras.device, {
            seen: true,
          })
        : await devices.seen(principal.tenant, principal.user, this.deviceId);
      this.setCategories(device?.categories ?? null);
    }
    if (!this.principal) {
      if (!this.ctx.admission.admit(principal.tenant, principal.user)) {
        throw new SyncError('RATE_LIMITED', 'too many connections for this user; reconnect later');
      }
      this.admitted = true;
    }
    this.principal = this.deviceId ? { ...principal, deviceId: this.deviceId } : principal;
    this.expiresAt = expiresAt;
    const welcome: ServerMessage = {
      type: 'welcome',
      connectionId: this.id,
      tenant: principal.tenant,
      user: principal.user,
      roles: principal.roles,
      serverTime: new Date().toISOString(),
      heartbeatMs: this.ctx.config.heartbeatMs,
      protocol: PROTOCOL_VERSION,
    };
    if (rid !== undefined) welcome.rid = rid;
    if (this.deviceId) {
      await this.pendingCursorSave(cursorKey(principal.tenant, principal.user, this.deviceId));
      const cursor = await this.ctx.store.getCursor(principal.tenant, principal.user, this.deviceId);
      if (cursor !== null) {
        welcome.cursor = cursor;
        this.ackedSeq = Math.max(this.ackedSeq, cursor);
      }
    }
    // What waits for the device is read before the welcome, so the two frames leave together.
    const pending = this.deviceId
      ? await devices.pending(principal.tenant, principal.user, this.deviceId, this.categories, this.ackedSeq)
      : null;
    this.send(welcome);
    if (pending && this.deviceId) this.send({ type: 'pending', deviceId: this.deviceId, ...pending });
  }

  /**
   * Applies the device's categories: records channels of other collections are refused from now on,
   * and those already subscribed end with an `unsubscribed` frame carrying a reason.
   */
  setCategories(categories: string[] | null): void {
    this.categories = categories;
    for (const sub of [...this.subscriptions.values()]) {
      if (sub.spec.kind !== 'records' || categoryAllows(categories, sub.spec.collection)) continue;
      this.dropSubscription(sub);
      this.send({
        type: 'unsubscribed',
        channel: sub.channel,
        reason: `the device no longer syncs ${sub.spec.collection}`,
      });
    }
  }

  /**
   * Runs an authentication (a `hello`, or the upgrade's token) and holds the frames that arrive
   * meanwhile: a client may pipeline `hello` and `subscribe` in one tick. Once it settles they are
   * handled in order (or dropped, when it failed and the connection is closing).
   */
  private authenticating(run: () => Promise<void>): Promise<void> {
    // Only the first authentication holds frames: a later hello (a fresh token) leaves the others be.
    const first = !this.principal && !this.holding;
    if (first) this.holding = true;
    return run().finally(() => {
      if (!first) return;
      this.holding = false;
      const held = this.held.splice(0);
      if (!this.principal || this.closing) return;
      for (const message of held) this.accept(message);
    });
  }

  /** Authenticates with the token given at the upgrade; frames sent meanwhile wait for it. */
  authenticateAtUpgrade(principal: Principal, expiresAt: number | null, deviceId?: string): Promise<void> {
    return this.authenticating(() => this.authenticate(principal, expiresAt, deviceId));
  }

  handleFrame(data: Buffer): void {
    this.lastSeen = Date.now();
    const counters = this.ctx.metrics;
    counters.bytesIn += data.length;
    // The rate limit comes before anything else, parsing included: a flood must cost the server as
    // little as possible per frame.
    if (this.principal && !this.withinRateLimit(data)) return;
    if (data.length > this.ctx.config.maxFrameBytes) {
      counters.messagesIn.invalid += 1;
      this.sendError(
        new SyncError(
          'PAYLOAD_TOO_LARGE',
          `frame of ${data.length} bytes exceeds ${this.ctx.config.maxFrameBytes}`,
        ),
      );
      return;
    }
    const text = data.toString('utf8');
    // A user who sent a frame too deep to store has its frames scanned for depth before they are
    // parsed: a poison frame is refused for a fraction of what parsing it costs.
    if (
      this.principal &&
      this.deepSenders.has(this.principal) &&
      nestedDeeperThan(text, this.ctx.config.maxJsonDepth + FRAME_ENVELOPE_LEVELS)
    ) {
      counters.messagesIn.invalid += 1;
      this.sendError(
        new SyncError(
          'BAD_REQUEST',
          `frame nested deeper than ${this.ctx.config.maxJsonDepth} levels of data`,
        ),
        leadingRid(text),
      );
      return;
    }
    const parsed = parseClientFrame(text);
    if (!parsed.ok) {
      counters.messagesIn.invalid += 1;
      this.sendError(parsed.error, parsed.rid);
      return;
    }
    const message = parsed.message;
    counters.messagesIn[message.type] += 1;
    if (this.holding) {
      if (this.held.length < MAX_HELD_FRAMES) this.held.push(message);
      else {
        this.sendError(
          new SyncError('RATE_LIMITED', `at most ${MAX_HELD_FRAMES} frames may wait for hello's answer`),
          message.rid,
        );
      }
      return;
    }
    this.accept(message);
  }

  /**
   * Takes a token from the user's bucket for one frame. A refused frame is not handled: the first
   * refusals of a window are answered RATE_LIMITED with the frame's rid and the wait (so a client that
   * merely went too fast retries the request), later ones are dropped unread, and past `floodCloseAfter`
   * refusals in a window the connection is closed 4008: a flood is not a conversation.
   */
  private withinRateLimit(data: Buffer): boolean {
    const decision = this.ctx.rateLimiter.take(this.principal!.tenant, this.principal!.user);
    if (decision.ok) return true;
    const now = Date.now();
    if (now - this.floodWindowStart > FLOOD_WINDOW_MS) {
      this.floodWindowStart = now;
      this.refusedInWindow = 0;
    }
    this.refusedInWindow += 1;
    this.ctx.metrics.rateLimited += 1;
    if (this.refusedInWindow > this.ctx.config.floodCloseAfter) {
      if (!this.closing) this.ctx.metrics.floodClosed += 1;
      this.close(CLOSE_CODES.RATE_LIMITED, 'rate limit exceeded');
    } else if (this.refusedInWindow <= ANSWERED_REFUSALS) {
      const details = { retryAfterMs: decision.retryAfterMs };
      this.sendError(new SyncError('RATE_LIMITED', 'too many messages; slow down', details), ridOf(data));
    }
    return false;
  }

  /** Handles a valid message: authentication check, then its handler. */
  private accept(message: ClientMessage): void {
    if (!this.principal && message.type !== 'hello') {
      this.sendError(new SyncError('UNAUTHORIZED', 'send hello with a token first'), message.rid);
      this.close(CLOSE_CODES.POLICY, 'not authenticated');
      return;
    }
    // Past this many requests in flight, stop reading the socket: TCP pushes back on the client
    // instead of the server queueing without bound.
    this.pending += 1;
    if (this.pending === MAX_PENDING_REQUESTS) this.ws.pause();
    const handled =
      message.type === 'hello' ? this.authenticating(() => this.dispatch(message)) : this.dispatch(message);
    handled
      .catch((err: unknown) => {
        if (err instanceof SyncError && isDepthRefusal(err) && this.principal) {
          this.deepSenders.add(this.principal);
        }
        this.sendError(err, message.rid);
        if (message.type === 'hello' && err instanceof SyncError && err.code === 'UNAUTHORIZED') {
          this.close(CLOSE_CODES.POLICY, 'unauthorized');
        } else if (message.type === 'hello' && err instanceof SyncError && err.code === 'RATE_LIMITED') {
          this.close(CLOSE_CODES.TRY_AGAIN_LATER, 'too many connections');
        }
      })
      .finally(() => {
        this.pending -= 1;
        if (this.pending === MAX_PENDING_REQUESTS - 1) this.ws.resume();
      });
  }

  private async dispatch(message: ClientMessage): Promise<void> {
    switch (message.type) {
      case 'hello': {
        const verified = await this.ctx.tokens.verify(message.token);
        await this.authenticate(verified.principal, verified.expiresAt, message.deviceId, message.rid, {
          device: message.device,
          capabilities: message.capabilities,
        });
        return;
      }
      case 'ping':
        this.send({ type: 'pong', rid: message.rid, serverTime: new Date().toISOString() });
        return;
      case 'ack': {
        if (message.seq <= this.ackedSeq) return;
        // A cursor only rises: one past the log would tell the device forever that nothing waits. An
        // ack up to what this connection was sent is taken as is; past that (a seq the client may have
        // learned elsewhere, e.g. over REST) the save clamps it to the log's head (gateway.saveCursor).
        if (message.seq > this.highestSeqSent()) this.ackUnverified = true;
        this.ackedSeq = message.seq;
        this.ackDirty = true;
        return;
      }
      case 'subscribe':
        return this.subscribe(message);
      case 'unsubscribe': {
        const topicSub = this.topicSubscriptions.get(message.channel);
        if (topicSub) {
          topicSub.close();
          this.topicSubscriptions.delete(message.channel);
          this.send({ type: 'unsubscribed', rid: message.rid, channel: message.channel });
          return;
        }
        const sub = this.subscriptions.get(message.channel);
        if (!sub) throw new SyncError('NOT_FOUND', `not subscribed to ${message.channel}`);
        this.dropSubscription(sub);
        this.send({ type: 'unsubscribed', rid: message.rid, channel: message.channel });
        return;
      }
      case 'mutate': {
        const results = await this.ctx.writer.mutate(this.principal!, message.mutations);
        if (results.some((r) => isDepthRefusal(r.error))) this.deepSenders.add(this.principal!);
        this.send({ type: 'results', rid: message.rid, results });
        return;
      }
      case 'publish': {
        const result = await this.ctx.writer.publish(this.principal!, message.event);
        this.send({ type: 'ok', rid: message.rid, ...result });
        return;
      }
      case 'resolve': {
        const request = {
          conflictId: message.conflictId,
          resolution: message.resolution,
          data: message.data,
        };
        const result = await this.ctx.writer.resolve(this.principal!, request);
        this.send({ type: 'results', rid: message.rid, results: [result] });
        return;
      }
    }
  }

  private dropSubscription(sub: Subscription): void {
    if (sub.lastSeq > this.sentSeq) this.sentSeq = sub.lastSeq;
    sub.close();
    this.ctx.hub.remove(sub);
    if (this.subscriptions.get(sub.channel) === sub) this.subscriptions.delete(sub.channel);
  }

  private async subscribe(message: ClientMessageOf<'subscribe'>): Promise<void> {
    const spec = parseChannel(message.channel);
    if ('error' in spec) throw new SyncError('BAD_REQUEST', spec.error);
    if (spec.kind === 'topic') {
      const topics = this.ctx.topics;
      if (!topics) throw new SyncError('BAD_REQUEST', 'topic channels are not enabled on this server');
      if (!this.topicSubscriptions.has(spec.name) && this.topicSubscriptions.size >= MAX_SUBSCRIPTIONS) {
        throw new SyncError('BAD_REQUEST', `at most ${MAX_SUBSCRIPTIONS} topic subscriptions per connection`);
      }
      this.topicSubscriptions.get(spec.name)?.close();
      const sink = {
        sendFrame: (frame: Buffer, type: OutboundType) => this.sendFrame(frame, type),
        bufferedBytes: () => this.outboundBytes(),
        isOpen: () => this.isOpen,
      };
      this.topicSubscriptions.set(
        spec.name,
        topics.subscribe(this.principal!.tenant, spec.name, sink, message.rid),
      );
      return;
    }
    if (spec.kind === 'records' && !categoryAllows(this.categories, spec.collection)) {
      throw new SyncError(
        'FORBIDDEN',
        `device ${this.deviceId} does not sync ${spec.collection} (its categories: ${this.categories?.join(', ') || 'none'})`,
      );
    }
    if (message.snapshot && spec.kind !== 'records') {
      throw new SyncError('BAD_REQUEST', 'snapshot is only available on records channels');
    }
    const existing = this.subscriptions.get(spec.name);
    if (existing) this.dropSubscription(existing);
    else if (this.subscriptions.size >= MAX_SUBSCRIPTIONS) {
      throw new SyncError('BAD_REQUEST', `at most ${MAX_SUBSCRIPTIONS} subscriptions per connection`);
    }
    const tenant = this.principal!.tenant;
    // Access rules: the subscription reads its collection's current rules at every record it delivers.
    if (spec.kind === 'records') await this.ctx.collections.get(tenant, spec.collection);
    const rules =
      spec.kind === 'records'
        ? subscriberAccess(this.principal!, () => this.ctx.collections.peek(tenant, spec.collection))
        : undefined;
    const sub = new Subscription(tenant, spec, this, rules);
    this.subscriptions.set(spec.name, sub);
    this.ctx.hub.add(sub);
    try {
      // Backlog reads must start after the tenant's live flow is ready, or an event committed in between
      // could be neither read nor delivered live.
      await this.ctx.hub.ready(tenant);
      if (message.snapshot) {
        await this.sendSubscribedWithSnapshot(sub, spec, message.rid);
      } else {
        const head = await this.ctx.store.headSeq(tenant);
        if (message.since !== undefined && message.since > head) {
          this.send({ type: 'subscribed', rid: message.rid, channel: spec.name, cursor: head });
          this.send({
            type: 'reset',
            channel: spec.name,
            reason: `cursor ${message.since} is ahead of the log (head ${head})`,
          });
          if (spec.kind === 'records') await this.sendSnapshot(sub, spec);
          else sub.lastSeq = head;
        } else {
          sub.lastSeq = message.since ?? head;
          this.send({ type: 'subscribed', rid: message.rid, channel: spec.name, cursor: head });
        }
      }
      await this.catchUp(sub);
    } catch (err) {
      this.dropSubscription(sub);
      throw err;
    }
  }

  private async sendSubscribedWithSnapshot(sub: Subscription, spec: ChannelSpec, rid?: Rid): Promise<void> {
    if (spec.kind !== 'records') return;
    const snap = await this.ctx.store.snapshot(sub.tenant, spec.collection, spec.filter);
    this.send({ type: 'subscribed', rid, channel: spec.name, cursor: snap.cursor });
    await this.streamSnapshot(sub, snap);
  }

  private async sendSnapshot(sub: Subscription, spec: ChannelSpec): Promise<void> {
    if (spec.kind !== 'records') return;
    await this.streamSnapshot(sub, await this.ctx.store.snapshot(sub.tenant, spec.collection, spec.filter));
  }

  private async streamSnapshot(
    sub: Subscription,
    snap: { records: import('@syncbridge/protocol').SyncRecord[]; cursor: number },
  ): Promise<void> {
    sub.lastSeq = snap.cursor;
    snap = { ...snap, records: sub.visibleRecords(snap.records) };
    // Chunks of at most SNAPSHOT_CHUNK records and (beyond their first record) a quarter of the buffer
    // limit in bytes, each written out before the next: a big snapshot must not trip the slow-consumer
    // limit of a reader that keeps up.
    const maxChunkBytes = this.ctx.config.maxBufferedBytes / 4;
    const head = `{"type":"snapshot","channel":${JSON.stringify(sub.channel)},"records":[`;
    let offset = 0;
    do {
      const parts: string[] = [];
      let bytes = 0;
      while (offset < snap.records.length && parts.length < SNAPSHOT_CHUNK) {
        const text = JSON.stringify(snap.records[offset]);
        if (parts.length > 0 && bytes + text.length > maxChunkBytes) break;
        parts.push(text);
        bytes += text.length;
        offset += 1;
      }
      const done = offset >= snap.records.length;
      await this.sendAndWait(
        Buffer.from(`${head}${parts.join(',')}],"cursor":${snap.cursor},"done":${done}}`),
        'snapshot',
      );
    } while (offset < snap.records.length && sub.state !== 'closed');
  }

  /** Reads the backlog after `sub.lastSeq` from the store, then hands over to live delivery. */
  private async catchUp(sub: Subscription): Promise<void> {
    const spec = sub.spec;
    const type = spec.kind === 'events' && spec.eventType !== '*' ? spec.eventType : undefined;
    while (sub.state === 'catching_up') {
      sub.beginRead();
      for (;;) {
        const page = await this.ctx.store.readEvents(sub.tenant, {
          afterSeq: sub.lastSeq,
          limit: BACKLOG_PAGE,
          type,
        });
        if (sub.state !== 'catching_up' || !this.isOpen) return;
        let written: Promise<void> | null = null;
        // With `batch`, matching events leave in `events` frames of up to MAX_BATCH_EVENTS.
        let batch: string[] = [];
        let batchBytes = 0;
        const frameOf = (jsons: string[]) =>
          Buffer.from(
            jsons.length === 1 ? eventFrameText(sub.channel, jsons[0]!) : eventsFrameText(sub.channel, jsons),
          );
        for (const event of page) {
          const visible = sub.visible(event);
          if (!visible) continue;
          const json = eventJson(visible);
          if (this.batch) {
            batch.push(json);
            batchBytes += json.length;
            if (batch.length < MAX_BATCH_EVENTS && batchBytes < MAX_BATCH_BYTES) continue;
          }
          // Paced by the socket rather than a whole page at once: past half the buffer limit, wait until
          // what was sent is written out. A reader catching up is not a slow consumer.
          if (written && this.outboundBytes() > this.ctx.config.maxBufferedBytes / 2) {
            await written;
            if (sub.state !== 'catching_up' || !this.isOpen) return;
          }
          written = this.batch
            ? this.sendAndWait(frameOf(batch), batch.length > 1 ? 'events' : 'event')
            : this.sendAndWait(Buffer.from(eventFrameText(sub.channel, json)), 'event');
          batch = [];
          batchBytes = 0;
        }
        if (batch.length > 0) {
          if (written && this.outboundBytes() > this.ctx.config.maxBufferedBytes / 2) {
            await written;
            if (sub.state !== 'catching_up' || !this.isOpen) return;
          }
          written = this.sendAndWait(frameOf(batch), batch.length > 1 ? 'events' : 'event');
        }
        if (page.length > 0) sub.lastSeq = page[page.length - 1]!.seq;
        if (written) await written;
        if (page.length < BACKLOG_PAGE) break;
      }
      const pending: LogEvent[] | null = sub.finishCatchUp();
      if (pending)
        for (const event of pending)
          this.sendEventFrame(sub.channel, Buffer.from(eventFrameText(sub.channel, eventJson(event))));
    }
  }
}
