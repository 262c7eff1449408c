/**
 * The channels of one connection: subscribe (with its snapshot or catch-up from the log, then the
 * hand-over to live delivery), unsubscribe, the device's categories, and the highest seq the client
 * was sent (what it may ack). It must never send a backlog faster than the socket takes it: snapshots
 * and catch-up pages are paced by the socket writer so a reader that keeps up is never a slow consumer.
 */
import {
  type ChannelSpec,
  type ClientMessageOf,
  type LogEvent,
  parseChannel,
  type Rid,
  type ServerMessage,
  type SyncRecord,
} from '@syncbridge/protocol';
import type { Principal } from '../auth/principal.ts';
import { assertFilterable } from '../core/collections.ts';
import { SyncError } from '../core/errors.ts';
import { categoryAllows } from '../devices/registry.ts';
import { auditVisible } from '../rules/audit.ts';
import { bypassesRules } from '../rules/decide.ts';
import { subscriberAccess } from '../rules/subscriber.ts';
import { eventsFrameText, MAX_BATCH_BYTES, MAX_BATCH_EVENTS } from './batch.ts';
import { readBacklog } from './conflate.ts';
import type { RealtimeContext } from './context.ts';
import type { OutboundType } from './counters.ts';
import type { SessionSink } from './session-sink.ts';
import { channelMatches, eventFrameText, eventJson, Subscription } from './subscription.ts';
import type { TopicSubscription } from './topic-hub.ts';

const BACKLOG_PAGE = 500;
const SNAPSHOT_CHUNK = 500;
const MAX_SUBSCRIPTIONS = 1000;

/** Who the session belongs to, and how it sends a message (the connection counts the seqs it names). */
export interface SessionOwner {
  readonly tenant: string;
  /** The caller, whose access rules a records subscription applies. */
  readonly principal: Principal | null;
  readonly deviceId: string | undefined;
  send(message: ServerMessage): void;
}

export class ChannelSession {
  readonly subscriptions = new Map<string, Subscription>();
  /** `topic:` channel subscriptions, served by the topic hub outside the log. */
  readonly topicSubscriptions = new Map<string, TopicSubscription>();
  /** The collections this connection's device syncs (null: every one); records channels are limited to them. */
  categories: string[] | null = null;
  /** The highest seq sent outside subscriptions, or by subscriptions since dropped (see highestSeqSent). */
  private sentSeq = 0;
  /** Resends after access rule changes, one after another. */
  private resends: Promise<void> = Promise.resolve();

  constructor(
    private readonly ctx: Pick<RealtimeContext, 'hub' | 'store' | 'topics' | 'config' | 'collections'>,
    private readonly writer: SessionSink,
    private readonly owner: SessionOwner,
  ) {}

  /** Seqs this connection was told of outside its subscriptions' events: heads, its own writes. */
  noteSeqSent(message: ServerMessage): void {
    let seq = 0;
    if (message.type === 'subscribed') seq = message.cursor;
    else if (message.type === 'pending') seq = message.head;
    else if (message.type === 'ok') seq = message.seq;
    else if (message.type === 'results') for (const r of message.results) seq = Math.max(seq, r.seq ?? 0);
    if (seq > this.sentSeq) this.sentSeq = seq;
  }

  /** The highest seq of the tenant's log sent on this connection or by its subscriptions. */
  highestSeqSent(): number {
    let seq = this.sentSeq;
    for (const sub of this.subscriptions.values()) if (sub.lastSeq > seq) seq = sub.lastSeq;
    return seq;
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
      this.owner.send({
        type: 'unsubscribed',
        channel: sub.channel,
        reason: `the device no longer syncs ${sub.spec.collection}`,
      });
    }
  }

  unsubscribe(message: ClientMessageOf<'unsubscribe'>): void {
    const topicSub = this.topicSubscriptions.get(message.channel);
    if (topicSub) {
      topicSub.close();
      this.topicSubscriptions.delete(message.channel);
      this.owner.send({ type: 'unsubscribed', rid: message.rid, channel: message.channel });
      return;
    }
    const sub = this.subscriptions.get(message.channel);
    if (!sub) throw new SyncError('NOT_FOUND', `not subscribed to ${message.channel}`);
    this.dropSubscription(sub);
    this.owner.send({ type: 'unsubscribed', rid: message.rid, channel: message.channel });
  }

  /** Drops every subscription; called once the socket has closed. */
  dispose(): void {
    for (const sub of this.subscriptions.values()) {
      sub.close();
      this.ctx.hub.remove(sub);
    }
    this.subscriptions.clear();
    for (const sub of this.topicSubscriptions.values()) sub.close();
    this.topicSubscriptions.clear();
  }

  private dropSubscription(sub: Subscription): void {
    if (sub.lastSeq > this.sentSeq) this.sentSeq = sub.lastSeq;
    sub.close();
    this.ctx.hub.remove(sub);
    if (this.subscriptions.get(sub.channel) === sub) this.subscriptions.delete(sub.channel);
  }

  /** Drops the channel's current subscription, or refuses a new channel past the limit. */
  private makeRoomFor(channel: string): void {
    const existing = this.subscriptions.get(channel);
    if (existing) this.dropSubscription(existing);
    else if (this.subscriptions.size >= MAX_SUBSCRIPTIONS) {
      throw new SyncError('BAD_REQUEST', `at most ${MAX_SUBSCRIPTIONS} subscriptions per connection`);
    }
  }

  async subscribe(message: ClientMessageOf<'subscribe'>): Promise<void> {
    // Paced sync: while this channel's backlog is sent, backlogs of lower priorities wait (pacer.ts).
    const release = this.writer.holdBacklog?.(message.channel);
    try {
      await this.subscribeChannel(message);
    } finally {
      release?.();
    }
  }

  private async subscribeChannel(message: ClientMessageOf<'subscribe'>): Promise<void> {
    const spec = parseChannel(message.channel);
    if ('error' in spec) throw new SyncError('BAD_REQUEST', spec.error);
    if (spec.kind === 'topic') return this.subscribeTopic(spec.name, message.rid);
    if (spec.kind === 'records' && !categoryAllows(this.categories, spec.collection)) {
      throw new SyncError(
        'FORBIDDEN',
        `device ${this.owner.deviceId} does not sync ${spec.collection} (its categories: ${this.categories?.join(', ') || 'none'})`,
      );
    }
    if (message.snapshot && spec.kind !== 'records') {
      throw new SyncError('BAD_REQUEST', 'snapshot is only available on records channels');
    }
    this.makeRoomFor(spec.name);
    const tenant = this.owner.tenant;
    // Access rules: the subscription reads its collection's current rules at every record it delivers.
    if (spec.kind === 'records') {
      assertFilterable((await this.ctx.collections.get(tenant, spec.collection)).settings, spec.filter);
    }
    const principal = this.owner.principal;
    const rules =
      spec.kind === 'records' && principal
        ? subscriberAccess(principal, () => this.ctx.collections.peek(tenant, spec.collection))
        : undefined;
    // Audit events that name a record show only to those the rules let see them (rules/audit.ts).
    const shows =
      spec.kind === 'events' && principal && !bypassesRules(principal)
        ? (event: LogEvent) =>
            auditVisible(principal, (name) => this.ctx.collections.peek(tenant, name), event)
        : undefined;
    if (shows) await this.ctx.collections.list(tenant);
    const sub = new Subscription(tenant, spec, this.writer, rules, shows);
    if (rules) sub.onRulesChanged = () => this.rulesChanged(sub);
    // Checked again after the reads above: subscribes pipelined on one connection interleave there, and
    // each must still replace the channel's earlier subscription and count against the limit.
    this.makeRoomFor(spec.name);
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
          this.owner.send({ type: 'subscribed', rid: message.rid, channel: spec.name, cursor: head });
          this.owner.send({
            type: 'reset',
            channel: spec.name,
            reason: `cursor ${message.since} is ahead of the log (head ${head})`,
          });
          if (spec.kind === 'records') await this.sendSnapshot(sub, spec);
          else sub.lastSeq = head;
        } else {
          sub.lastSeq = message.since ?? head;
          this.owner.send({ type: 'subscribed', rid: message.rid, channel: spec.name, cursor: head });
        }
      }
      await this.catchUp(sub);
      // Rules changed while the snapshot or backlog was being sent: send them again under the new ones.
      if (sub.onRulesChanged) sub.onRulesChanged();
    } catch (err) {
      this.dropSubscription(sub);
      throw err;
    }
  }

  /**
   * The subscription's read or hide rules changed (the tenant's settings were read again): its copy is
   * sent again under the new rules, as after a `reset`: live events wait in its buffer while an
   * authoritative snapshot (which drops from the client's cache what it may no longer read, and brings
   * what it may now read) and the backlog after it are sent. One resend at a time per connection.
   */
  private rulesChanged(sub: Subscription): void {
    if (sub.state !== 'live' || !sub.access?.takeRulesChange()) return;
    sub.restartCatchUp();
    this.resends = this.resends
      .then(async () => {
        if (sub.state === 'closed' || this.subscriptions.get(sub.channel) !== sub) return;
        const collection = sub.spec.kind === 'records' ? sub.spec.collection : sub.channel;
        this.owner.send({
          type: 'reset',
          channel: sub.channel,
          reason: `the access rules of ${collection} changed`,
        });
        await this.sendSnapshot(sub, sub.spec);
        await this.catchUp(sub);
      })
      .catch(() => {
        // The store could not be read: end the subscription rather than leave it under the old rules.
        if (this.subscriptions.get(sub.channel) !== sub) return;
        this.dropSubscription(sub);
        this.owner.send({
          type: 'unsubscribed',
          channel: sub.channel,
          reason: 'the access rules changed and the records could not be sent again; subscribe again',
        });
      });
  }

  private subscribeTopic(name: string, rid?: Rid): void {
    const topics = this.ctx.topics;
    if (!topics) throw new SyncError('BAD_REQUEST', 'topic channels are not enabled on this server');
    if (!this.topicSubscriptions.has(name) && this.topicSubscriptions.size >= MAX_SUBSCRIPTIONS) {
      throw new SyncError('BAD_REQUEST', `at most ${MAX_SUBSCRIPTIONS} topic subscriptions per connection`);
    }
    this.topicSubscriptions.get(name)?.close();
    const writer = this.writer;
    const sink = {
      sendFrame: (frame: Buffer, type: OutboundType) => writer.sendFrame(frame, type),
      bufferedBytes: () => writer.outboundBytes(),
      isOpen: () => writer.isOpen,
    };
    this.topicSubscriptions.set(name, topics.subscribe(this.owner.tenant, name, sink, rid));
  }

  private async sendSubscribedWithSnapshot(sub: Subscription, spec: ChannelSpec, rid?: Rid): Promise<void> {
    if (spec.kind !== 'records') return;
    const snap = await this.ctx.store.snapshot(sub.tenant, spec.collection, spec.filter);
    this.owner.send({ type: 'subscribed', rid, channel: spec.name, cursor: snap.cursor });
    await this.streamSnapshot(sub, snap);
  }

  private async sendSnapshot(sub: Subscription, spec: ChannelSpec): Promise<void> {
    if (spec.kind !== 'records') return;
    await this.streamSnapshot(sub, await this.ctx.store.snapshot(sub.tenant, spec.collection, spec.filter));
  }

  private async streamSnapshot(
    sub: Subscription,
    snap: { records: SyncRecord[]; cursor: number },
  ): Promise<void> {
    sub.lastSeq = snap.cursor;
    snap = { ...snap, records: sub.visibleRecords(snap.records) };
    // Chunks of at most SNAPSHOT_CHUNK records and (beyond their first record) a quarter of the buffer
    // limit in bytes, each written out before the next: a big snapshot must not trip the slow-consumer
    // limit of a reader that keeps up.
    const maxChunkBytes = Math.min(
      this.ctx.config.maxBufferedBytes / 4,
      this.writer.maxFrameBytes ?? Infinity,
    );
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
      await this.writer.sendAndWait(
        Buffer.from(`${head}${parts.join(',')}],"cursor":${snap.cursor},"done":${done}}`),
        'snapshot',
        done ? { channel: sub.channel, seq: snap.cursor } : undefined,
      );
    } while (offset < snap.records.length && sub.state !== 'closed');
  }

  /** Reads the backlog after `sub.lastSeq` from the store, then hands over to live delivery. */
  private async catchUp(sub: Subscription): Promise<void> {
    const spec = sub.spec;
    const writer = this.writer;
    const type = spec.kind === 'events' && spec.eventType !== '*' ? spec.eventType : undefined;
    const maxBatchBytes = Math.min(MAX_BATCH_BYTES, writer.maxFrameBytes ?? MAX_BATCH_BYTES);
    const conflating = writer.conflate === true && spec.kind === 'records';
    while (sub.state === 'catching_up') {
      sub.beginRead();
      for (;;) {
        const after = sub.lastSeq;
        const read = await readBacklog(
          (afterSeq) => this.ctx.store.readEvents(sub.tenant, { afterSeq, limit: BACKLOG_PAGE, type }),
          after,
          BACKLOG_PAGE,
          conflating,
          (event) => channelMatches(spec, event),
        );
        if (sub.state !== 'catching_up' || !writer.isOpen) return;
        if (read.skipped > 0) {
          const marker = {
            type: 'conflated',
            channel: sub.channel,
            after,
            through: read.through,
            skipped: read.skipped,
          };
          void writer.sendAndWait(Buffer.from(JSON.stringify(marker)), 'conflated', {
            channel: sub.channel,
            seq: after,
          });
        }
        let written: Promise<void> | null = null;
        // With `batch`, matching events leave in `events` frames of up to MAX_BATCH_EVENTS.
        let batch: string[] = [];
        let batchBytes = 0;
        let batchSeq = 0;
        const frameOf = (jsons: string[]) =>
          Buffer.from(
            jsons.length === 1 ? eventFrameText(sub.channel, jsons[0]!) : eventsFrameText(sub.channel, jsons),
          );
        for (const event of read.events) {
          const visible = sub.visible(event);
          if (!visible) continue;
          const json = eventJson(visible);
          const position = { channel: sub.channel, seq: event.seq };
          if (writer.batch) {
            batchSeq = event.seq;
            batch.push(json);
            batchBytes += json.length;
            if (batch.length < MAX_BATCH_EVENTS && batchBytes < maxBatchBytes) continue;
          }
          // Paced by the socket rather than a whole page at once: past half the buffer limit, wait until
          // what was sent is written out. A reader catching up is not a slow consumer.
          if (written && writer.outboundBytes() > this.ctx.config.maxBufferedBytes / 2) {
            await written;
            if (sub.state !== 'catching_up' || !writer.isOpen) return;
          }
          written = writer.batch
            ? writer.sendAndWait(frameOf(batch), batch.length > 1 ? 'events' : 'event', position)
            : writer.sendAndWait(Buffer.from(eventFrameText(sub.channel, json)), 'event', position);
          batch = [];
          batchBytes = 0;
        }
        if (batch.length > 0) {
          if (written && writer.outboundBytes() > this.ctx.config.maxBufferedBytes / 2) {
            await written;
            if (sub.state !== 'catching_up' || !writer.isOpen) return;
          }
          written = writer.sendAndWait(frameOf(batch), batch.length > 1 ? 'events' : 'event', {
            channel: sub.channel,
            seq: batchSeq,
          });
        }
        if (read.through > sub.lastSeq) sub.lastSeq = read.through;
        if (written) await written;
        if (!read.more) break;
      }
      const pending: LogEvent[] | null = sub.finishCatchUp();
      if (pending)
        for (const event of pending)
          writer.sendEventFrame(
            sub.channel,
            Buffer.from(eventFrameText(sub.channel, eventJson(event))),
            event.seq,
          );
    }
  }
}
