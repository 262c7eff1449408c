/**
 * One channel subscription of one connection, and the backlog-to-live handover.
 *
 * A subscription is registered with the hub before it reads its backlog, so every event committed from
 * then on is offered to it. While it catches up from the store it buffers what it is offered (bounded;
 * on overflow it drops the buffer and reads the store again, which holds everything). When a read comes
 * back short it flushes the buffer and goes live. Delivery is gated by `lastSeq`: nothing at or below it
 * is sent again, so the handover has neither a gap nor a duplicate.
 *
 * A records subscription of a caller that rules can apply to carries its SubscriberAccess
 * (rules/subscriber.ts): every record it delivers, live, from the backlog or in a snapshot, passes it.
 */
import { type ChannelSpec, changeMatchesFilter, type LogEvent, type SyncRecord } from '@syncbridge/protocol';
import type { RuledCollection } from '../rules/decide.ts';
import type { EventAccess } from '../rules/fanout.ts';
import type { EventView, SubscriberAccess } from '../rules/subscriber.ts';

/** Builds (once per distinct channel and view) the frame of the event being dispatched. */
export type FrameOf = (channel: string, view?: Exclude<EventView, 'as_is' | 'skip'>) => Buffer;
/** The EventAccess of the event being dispatched, shared by every subscription it is offered to. */
export type SharedAccess = (collection: RuledCollection) => EventAccess;

const MAX_BUFFERED_EVENTS = 10_000;

export interface SubscriptionSink {
  /** Sends a prepared frame; returns false when the connection can take no more. */
  sendFrame(frame: Buffer): boolean;
  /**
   * Sends a prepared `event` frame of `channel` carrying the log event `seq` (the sink may batch it with
   * others of the channel).
   */
  sendEventFrame?(channel: string, frame: Buffer, seq: number): boolean;
}

export function channelMatches(spec: ChannelSpec, event: LogEvent): boolean {
  if (spec.kind === 'records') {
    return (
      event.kind === 'record' &&
      event.collection === spec.collection &&
      (Object.keys(spec.filter).length === 0 || changeMatchesFilter(event.data, event.previous, spec.filter))
    );
  }
  if (spec.kind === 'events') {
    return (
      event.kind === 'event' &&
      (spec.eventType === '*' || event.type === spec.eventType) &&
      (spec.source === undefined || event.source === spec.source) &&
      (spec.target === undefined || event.target === spec.target)
    );
  }
  return false;
}

/** The hub's index key for events a channel can match. */
export function routingKeyOfChannel(spec: ChannelSpec): string {
  if (spec.kind === 'records') return `r:${spec.collection}`;
  if (spec.kind === 'events') return `e:${spec.eventType}`;
  return `t:${spec.topic}`;
}

export class Subscription {
  state: 'catching_up' | 'live' | 'closed' = 'catching_up';
  /** Highest seq this subscription has delivered or read past. */
  lastSeq = 0;
  private buffer: LogEvent[] = [];
  private overflowed = false;
  /** Set by the channel session: sends the subscription again when its access rules changed. */
  onRulesChanged: (() => void) | undefined;

  constructor(
    readonly tenant: string,
    readonly spec: ChannelSpec,
    private readonly sink: SubscriptionSink,
    readonly access?: SubscriberAccess,
    /** For `events:` channels under access rules: whether the subscriber sees a domain event. */
    private readonly shows?: (event: LogEvent) => boolean,
  ) {}

  /** Goes back to catching up (buffering what it is offered) so its copy can be sent again from the store. */
  restartCatchUp(): void {
    if (this.state !== 'live') return;
    this.state = 'catching_up';
    this.buffer = [];
  }

  /** The event as this subscription delivers it (access rules applied), or null when it does not. */
  visible(event: LogEvent): LogEvent | null {
    if (!channelMatches(this.spec, event)) return null;
    if (this.shows && !this.shows(event)) return null;
    return this.access ? this.access.visible(event) : event;
  }

  /** The snapshot records this subscription may deliver. */
  visibleRecords(records: SyncRecord[]): SyncRecord[] {
    return this.access ? this.access.records(records) : records;
  }

  get channel(): string {
    return this.spec.name;
  }

  get routingKey(): string {
    return routingKeyOfChannel(this.spec);
  }

  /** Called by the hub for every committed event of the tenant that may match, in seq order. */
  offer(event: LogEvent, frame: FrameOf, shared?: SharedAccess): void {
    if (event.seq <= this.lastSeq || !channelMatches(this.spec, event)) return;
    if (this.state === 'live') {
      this.lastSeq = event.seq;
      if (this.shows && !this.shows(event)) return;
      const view = this.access ? this.access.view(event, shared) : 'as_is';
      if (view === 'skip') return;
      const name = this.spec.name;
      const built = view === 'as_is' ? frame(name) : frame(name, view);
      if (this.sink.sendEventFrame) this.sink.sendEventFrame(name, built, event.seq);
      else this.sink.sendFrame(built);
    } else if (this.state === 'catching_up') {
      if (this.buffer.length >= MAX_BUFFERED_EVENTS) {
        this.buffer = [];
        this.overflowed = true;
      } else this.buffer.push(event);
    }
  }

  /** Starts a store read: clears the overflow mark so `finishCatchUp` can tell if this read is complete. */
  beginRead(): void {
    this.overflowed = false;
  }

  /**
   * After a short (final) store read: returns the buffered events to send, and goes live;
   * or returns null when the buffer overflowed during the read, and the caller must read again.
   */
  finishCatchUp(): LogEvent[] | null {
    if (this.overflowed) return null;
    const pending = this.buffer.filter((e) => e.seq > this.lastSeq).sort((a, b) => a.seq - b.seq);
    this.buffer = [];
    if (pending.length > 0) this.lastSeq = pending[pending.length - 1]!.seq;
    this.state = 'live';
    const shown = this.shows ? pending.filter(this.shows) : pending;
    return this.access ? shown.flatMap((e) => this.access!.visible(e) ?? []) : shown;
  }

  close(): void {
    this.state = 'closed';
    this.buffer = [];
  }
}

/**
 * The JSON of a log event as a WS `event` frame carries it. `type` is the frame's own discriminator
 * ("event"), so a domain event's type travels as `eventType` instead of being overwritten or overwriting it.
 */
export function eventJson(event: LogEvent): string {
  if (event.kind !== 'event') return JSON.stringify(event);
  const { type, ...rest } = event;
  return JSON.stringify({ ...rest, eventType: type });
}

/** The text of a WS `event` frame: the event's JSON (see `eventJson`) with `type` and `channel` in front. */
export function eventFrameText(channel: string, eventJson: string): string {
  return `{"type":"event","channel":${JSON.stringify(channel)},${eventJson.slice(1)}`;
}
