/**
 * One WebSocket connection: reads each client frame (rate limit, size and depth checks, validation),
 * holds frames that arrive before the first authentication settles, and dispatches each message to the
 * handshake, its channel session or the log writer. The outbound side is the socket writer.
 * It must never let one client's bad input or slowness reach another client: every frame is validated,
 * every failure becomes a typed `error` frame, and a reader that falls too far behind is disconnected
 * (with a close code that tells it to resume) instead of growing the server's memory.
 */
import { CLOSE_CODES, type ClientMessage, type Rid, type ServerMessage } from '@syncbridge/protocol';
import type { WebSocket } from 'ws';
import type { Principal } from '../auth/principal.ts';
import { SyncError, toPublicError } from '../core/errors.ts';
import { isDepthRefusal, nestedDeeperThan } from '../core/json-limits.ts';
import { ChannelSession } from './channel-session.ts';
import type { RealtimeContext } from './context.ts';
import type { OutboundType } from './counters.ts';
import { DeepSenders } from './deep-senders.ts';
import { type HandshakeTarget, type HelloExtras, handshake } from './handshake.ts';
import { Pacer, type PaceSettings } from './pacer.ts';
import { SocketWriter } from './socket-writer.ts';
import type { Subscription } from './subscription.ts';
import { leadingRid, parseClientFrame, ridOf } from './validate.ts';

export { cursorKey, type HelloExtras } from './handshake.ts';

const MAX_PENDING_REQUESTS = 256;
/** Levels of a `mutate` frame around a mutation's data: the message, `mutations`, the mutation. */
const FRAME_ENVELOPE_LEVELS = 3;
/** Refusals per flood window answered with an error frame; later ones are dropped without a word. */
const ANSWERED_REFUSALS = 100;
/** The window over which refusals are counted against `floodCloseAfter`. */
const FLOOD_WINDOW_MS = 10_000;
/** Frames a client may send after `hello` before its answer; more are refused RATE_LIMITED. */
const MAX_HELD_FRAMES = 64;

export class Connection implements HandshakeTarget {
  principal: Principal | null = null;
  deviceId: string | undefined;
  expiresAt: number | null = null;
  readonly connectedAt = Date.now();
  lastSeen = Date.now();
  lastPingAt = 0;
  ackedSeq = 0;
  ackDirty = false;
  /** `ackedSeq` is beyond every seq this connection was sent: its save checks it against the head. */
  ackUnverified = false;
  /** Counted against the user's connection cap (released on dispose). */
  admitted = false;
  readonly writer: SocketWriter;
  /** Holds what is sent to the device's bandwidth budget and priorities (pass-through without one). */
  readonly pacer: Pacer;
  readonly channels: ChannelSession;
  private pending = 0;
  private floodWindowStart = 0;
  private refusedInWindow = 0;
  /** The first authentication is in progress: frames wait for it in `held`. */
  private holding = false;
  private readonly held: ClientMessage[] = [];

  constructor(
    readonly id: string,
    ws: WebSocket,
    private readonly ctx: RealtimeContext,
    readonly remoteAddress: string | undefined,
    /** The save of this device's cursor still in flight (from an earlier connection), if any. */
    private readonly pendingCursorSave: (key: string) => Promise<void> | undefined = () => undefined,
    /** Users of this node who sent data nested past the limit (shared by the gateway's connections). */
    private readonly deepSenders: DeepSenders = new DeepSenders(),
  ) {
    this.writer = new SocketWriter(ws, ctx);
    this.pacer = new Pacer(this.writer, ctx.config.maxBufferedBytes);
    this.channels = new ChannelSession(ctx, this.pacer, this);
  }

  /** The tenant of the authenticated principal (channels are used only once authenticated). */
  get tenant(): string {
    return this.principal!.tenant;
  }

  get isOpen(): boolean {
    return this.writer.isOpen;
  }

  get subscriptions(): ReadonlyMap<string, Subscription> {
    return this.channels.subscriptions;
  }

  send(message: ServerMessage): void {
    if (!this.isOpen) return;
    this.channels.noteSeqSent(message);
    this.pacer.sendFrame(Buffer.from(JSON.stringify(message)), message.type);
  }

  /** The highest seq of the tenant's log this connection has been sent (or told of): what it may ack. */
  highestSeqSent(): number {
    return Math.max(this.channels.highestSeqSent(), this.ackedSeq);
  }

  /** Sends a prepared frame of the given type (the type is counted for metrics, never checked). */
  sendFrame(frame: Buffer, type: OutboundType = 'event'): boolean {
    return this.pacer.sendFrame(frame, type);
  }

  /** Bytes sent but not yet taken by the network (see SocketWriter.outboundBytes). */
  outboundBytes(): number {
    return this.pacer.outboundBytes();
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
    this.writer.close(code, reason);
  }

  ping(): void {
    this.writer.ping();
  }

  terminate(): void {
    this.writer.terminate();
  }

  /** Applies the device's bandwidth budget, priorities and conflation (see pacer.ts). */
  pace(settings: PaceSettings | null): void {
    this.pacer.configure(settings);
  }

  /** Applies the device's categories (see ChannelSession.setCategories). */
  setCategories(categories: string[] | null): void {
    this.channels.setCategories(categories);
  }

  /** Drops every subscription; called once the socket has closed. */
  dispose(): void {
    if (this.admitted && this.principal) {
      this.admitted = false;
      this.ctx.admission.release(this.principal.tenant, this.principal.user);
    }
    this.channels.dispose();
    this.pacer.dispose();
  }

  authenticate(
    principal: Principal,
    expiresAt: number | null,
    deviceId?: string,
    rid?: Rid,
    extras: HelloExtras = {},
  ): Promise<void> {
    return handshake(this, this.ctx, { principal, expiresAt, deviceId, rid, extras }, this.pendingCursorSave);
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
      if (!this.principal || this.writer.isClosing) return;
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
      this.refusedBeforeHello();
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
      this.refusedBeforeHello();
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

  /** A binary frame: refused (the protocol is JSON text), like any other frame that is not a message. */
  handleBinary(data: Buffer): void {
    this.lastSeen = Date.now();
    if (this.principal && !this.withinRateLimit(data)) return;
    this.ctx.metrics.messagesIn.invalid += 1;
    this.ctx.metrics.bytesIn += data.length;
    this.sendError(new SyncError('BAD_REQUEST', 'binary frames are not supported; send JSON text'));
    this.refusedBeforeHello();
  }

  /**
   * A frame refused on a connection not authenticated (and with no hello in flight) ends it with 1008:
   * only a valid `hello` may come first, so an unauthenticated peer cannot keep a socket (or the
   * server's parser) busy until the hello timeout with frames that are not one.
   */
  private refusedBeforeHello(): void {
    if (!this.principal && !this.holding) this.close(CLOSE_CODES.POLICY, 'not authenticated');
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
      if (!this.writer.isClosing) this.ctx.metrics.floodClosed += 1;
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
    if (this.pending === MAX_PENDING_REQUESTS) this.writer.pause();
    const handled =
      message.type === 'hello' ? this.authenticating(() => this.dispatch(message)) : this.dispatch(message);
    // One reaction per request (not .catch().finally(): two more promises for every message).
    handled.then(this.settled, (err: unknown) => {
      try {
        this.failed(message, err);
      } finally {
        this.settled();
      }
    });
  }

  /** A request is done (answered or failed): it no longer counts against MAX_PENDING_REQUESTS. */
  private readonly settled = (): void => {
    this.pending -= 1;
    if (this.pending === MAX_PENDING_REQUESTS - 1) this.writer.resume();
  };

  /**
   * Answers a request that failed with its typed error, and closes after a refused hello: with 1013
   * when the user has too many connections or the server could not answer (retry later), else 1008.
   * A hello refused on a connection not yet authenticated always ends it; on an authenticated one
   * (a token refresh), only a bad token does.
   */
  private failed(message: ClientMessage, err: unknown): void {
    if (err instanceof SyncError && isDepthRefusal(err) && this.principal) {
      this.deepSenders.add(this.principal);
    }
    this.sendError(err, message.rid);
    if (message.type !== 'hello') return;
    const code = toPublicError(err).code;
    if (code === 'RATE_LIMITED') this.close(CLOSE_CODES.TRY_AGAIN_LATER, 'too many connections');
    else if (code === 'UNAVAILABLE' || code === 'INTERNAL') {
      if (!this.principal) this.close(CLOSE_CODES.TRY_AGAIN_LATER, 'try again later');
    } else if (code === 'UNAUTHORIZED') this.close(CLOSE_CODES.POLICY, 'unauthorized');
    else if (!this.principal) this.close(CLOSE_CODES.POLICY, 'not authenticated');
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
        return this.channels.subscribe(message);
      case 'unsubscribe':
        return this.channels.unsubscribe(message);
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
}
