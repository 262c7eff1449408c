/**
 * One server-sent-events stream (`GET /v1/stream`): the read-only twin of a WebSocket connection for
 * clients behind proxies that refuse upgrades. It authenticates with the token the request carried,
 * runs the same handshake (device, per-user cap, `welcome`, `pending`), and subscribes the channels of
 * `channels=` (none: a stream of `welcome`, `pending` and `conflict` only) in order through the same ChannelSession as the WebSocket (filters, access rules, device
 * categories, backlog-to-live handover, `reset`). Writes go over REST. A channel that cannot be
 * subscribed gets an `error` whose `rid` is the channel as given; the others carry on.
 * A registered device's bandwidth budget, collection priorities and conflation apply as on the WebSocket
 * (pacer.ts): everything sent goes through the stream's Pacer, and with priorities the channels are
 * subscribed highest priority first, so a higher priority's backlog is sent before a lower one's starts.
 */
import type { ServerResponse } from 'node:http';
import { CLOSE_CODES, type Rid, type ServerMessage } from '@syncbridge/protocol';
import type { Principal } from '../auth/principal.ts';
import { SyncError, toPublicError } from '../core/errors.ts';
import { ChannelSession } from './channel-session.ts';
import type { RealtimeContext } from './context.ts';
import { type HandshakeTarget, handshake } from './handshake.ts';
import { Pacer, type PaceSettings } from './pacer.ts';
import { SseWriter } from './sse-writer.ts';
import type { StreamCursor } from './stream-cursor.ts';
import type { Subscription } from './subscription.ts';

export interface StreamRequest {
  principal: Principal;
  expiresAt: number | null;
  deviceId?: string;
  /** The channels as given, and their normalized names (same order). */
  channels: readonly string[];
  names: readonly string[];
  /** Channels that start with a snapshot when they have no position (`records:` only). */
  snapshots: ReadonlySet<string>;
  /** Where each channel resumes (undefined: from the head). */
  since: StreamCursor;
  remoteAddress?: string;
}

export class SseStream implements HandshakeTarget {
  principal: Principal | null = null;
  deviceId: string | undefined;
  expiresAt: number | null;
  ackedSeq = 0;
  admitted = false;
  readonly connectedAt = Date.now();
  readonly writer: SseWriter;
  /** Holds what is sent to the device's bandwidth budget and priorities (pass-through without one). */
  readonly pacer: Pacer;
  readonly channels: ChannelSession;
  readonly remoteAddress: string | undefined;
  /** The cursor of the `subscribed` last sent per channel (a `reset` moves the position to it). */
  private readonly subscribedCursor = new Map<string, number>();

  constructor(
    readonly id: string,
    res: ServerResponse,
    private readonly ctx: RealtimeContext,
    private readonly req: StreamRequest,
    private readonly pendingCursorSave: (key: string) => Promise<void> | undefined,
  ) {
    this.expiresAt = req.expiresAt;
    this.remoteAddress = req.remoteAddress;
    this.writer = new SseWriter(res, ctx, req.names, [...req.since]);
    this.pacer = new Pacer(this.writer, ctx.config.maxBufferedBytes);
    this.channels = new ChannelSession(ctx, this.pacer, this);
  }

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
    if (message.type === 'subscribed') {
      this.subscribedCursor.set(message.channel, message.cursor);
      if (this.writer.positionOf(message.channel) === undefined)
        this.writer.setPosition(message.channel, message.cursor);
    } else if (message.type === 'reset' && !message.channel.startsWith('records:')) {
      // An events channel past the head resumes from the head; a records channel's snapshot moves it.
      const cursor = this.subscribedCursor.get(message.channel);
      if (cursor !== undefined) this.writer.setPosition(message.channel, cursor);
    }
    this.channels.noteSeqSent(message);
    this.pacer.sendFrame(Buffer.from(JSON.stringify(message)), message.type);
  }

  sendError(err: unknown, rid?: Rid): void {
    const pub = toPublicError(err);
    if (pub.code === 'INTERNAL') this.ctx.logger.error({ err, stream: this.id }, 'stream request failed');
    const message: ServerMessage = { type: 'error', code: pub.code, message: pub.message };
    if (rid !== undefined) message.rid = rid;
    if (pub.details !== undefined) message.details = pub.details;
    this.send(message);
  }

  outboundBytes(): number {
    return this.pacer.outboundBytes();
  }

  /** Applies the device's bandwidth budget, priorities and conflation (see pacer.ts). */
  pace(settings: PaceSettings | null): void {
    this.pacer.configure(settings);
  }

  close(code: number, reason: string): void {
    this.writer.close(code, reason);
  }

  terminate(): void {
    this.writer.terminate();
  }

  setCategories(categories: string[] | null): void {
    this.channels.setCategories(categories);
  }

  /** Handshake, then each channel in order; resolves once every channel is live (or refused). */
  async start(): Promise<void> {
    const { principal, expiresAt, deviceId } = this.req;
    try {
      await handshake(this, this.ctx, { principal, expiresAt, deviceId }, this.pendingCursorSave);
    } catch (err) {
      this.sendError(err);
      const tooMany = err instanceof SyncError && err.code === 'RATE_LIMITED';
      this.close(
        tooMany ? CLOSE_CODES.TRY_AGAIN_LATER : CLOSE_CODES.POLICY,
        tooMany ? 'too many connections' : 'refused',
      );
      return;
    }
    for (const i of this.subscribeOrder()) {
      if (!this.isOpen) break;
      const channel = this.req.channels[i]!;
      const since = this.writer.positions[i];
      try {
        const from =
          since !== undefined ? { since } : this.req.snapshots.has(channel) ? { snapshot: true } : {};
        await this.channels.subscribe({
          type: 'subscribe',
          channel,
          ...from,
        });
      } catch (err) {
        this.sendError(err, channel);
      }
    }
  }

  /**
   * The channels' indexes in the order to subscribe them: as given, or with a device's priorities,
   * highest first (stable, so channels of one priority keep their order).
   */
  private subscribeOrder(): number[] {
    const order = this.req.names.map((_, i) => i);
    if (!this.pacer.paced) return order;
    const priority = order.map((i) => this.pacer.priorityOf(this.req.names[i]!));
    return order.sort((a, b) => priority[b]! - priority[a]! || a - b);
  }

  dispose(): void {
    if (this.admitted && this.principal) {
      this.admitted = false;
      this.ctx.admission.release(this.principal.tenant, this.principal.user);
    }
    this.channels.dispose();
    this.pacer.dispose();
  }
}
