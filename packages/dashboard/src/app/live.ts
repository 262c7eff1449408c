/**
 * The dashboard's live feed: one WebSocket to the server's own realtime endpoint, speaking the same
 * protocol as any client (hello with a token, subscribe). It counts the log's events per second for the
 * overview chart, keeps the latest ones, and passes on the `health` and `conflict` frames the server
 * pushes to tenant admins. It reconnects by itself with a growing delay.
 *
 * The token goes in the `hello` frame, never in the URL. With an API key, a short-lived admin token is
 * minted for the tenant (POST /v1/auth/token) before each connection.
 */
import type { Conflict, EventMessage, LogEvent, PlatformHealth, ServerMessage } from '@syncbridge/protocol';
import type { Api } from './api.ts';
import type { Session } from './session.ts';

export type LiveState = 'connecting' | 'open' | 'closed';

/** One second of the chart: record changes and domain events seen in it. */
export interface Bucket {
  t: number;
  records: number;
  events: number;
}

/** An entry of the live activity list. */
export type Activity = Pick<
  LogEvent,
  'seq' | 'kind' | 'collection' | 'id' | 'op' | 'version' | 'type' | 'actor' | 'ts' | 'source' | 'target'
>;

const WINDOW_SECONDS = 300;
const RECENT = 50;
const DISCOVER_MS = 5000;

export class LiveFeed {
  state: LiveState = 'connecting';
  error: string | null = null;
  user: string | null = null;
  health: PlatformHealth[] | null = null;
  /** Conflicts pushed since the page loaded, by id (the latest state of each). */
  readonly conflicts = new Map<string, Conflict>();
  readonly buckets: Bucket[] = [];
  /** The latest events, newest (highest seq) first. */
  readonly recent: Activity[] = [];
  head = 0;
  private ws: WebSocket | null = null;
  /** Watched channels, with the last seq received on each: a (re)subscription resumes after it. */
  private readonly channels = new Map<string, number | null>([['events:*', null]]);
  /** The log's head when the page loaded: collections found later are read from there. */
  private startHead: number | null = null;
  private listeners = new Set<() => void>();
  private retryMs = 500;
  private stopped = false;
  private timer: ReturnType<typeof setTimeout> | null = null;
  private readonly ticker: ReturnType<typeof setInterval>;
  private readonly discoverer: ReturnType<typeof setInterval>;
  private rid = 0;

  constructor(
    private readonly session: Session,
    private readonly api: Api,
  ) {
    this.ticker = setInterval(() => this.tick(), 1000);
    this.discoverer = setInterval(() => void this.discover(), DISCOVER_MS);
    this.tick();
    void this.discover().then(() => this.connect());
  }

  /** Calls `listener` on every change; returns the unsubscribe function. */
  onChange(listener: () => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  close(): void {
    this.stopped = true;
    clearInterval(this.ticker);
    clearInterval(this.discoverer);
    if (this.timer) clearTimeout(this.timer);
    this.ws?.close(1000, 'dashboard closed');
  }

  /** Watches a collection's record changes too, from the log's head at page load. */
  private watchCollection(collection: string): void {
    const channel = `records:${collection}`;
    if (this.channels.has(channel)) return;
    this.channels.set(channel, null);
    this.subscribe(channel);
  }

  /**
   * Records channels are per collection: the collections to watch are the configured ones and those
   * the recent log has written to, looked up again every few seconds.
   */
  private async discover(): Promise<void> {
    try {
      const [configured, probe] = await Promise.all([
        this.api.collections(),
        this.api.events({ after: 0, limit: 1 }),
      ]);
      const first = this.startHead === null;
      if (first) this.startHead = probe.head;
      for (const c of configured.collections) this.watchCollection(c.name);
      const after = Math.max(0, probe.head - 1000);
      const log = await this.api.events({ after, limit: 1000 });
      for (const e of log.events) if (e.collection) this.watchCollection(e.collection);
      // The log up to the page load fills the chart and the activity list, so a tenant with history does
      // not look idle; what follows arrives live, from the subscriptions that start at that head.
      if (first) for (const e of log.events) if (e.seq <= probe.head) this.remember(e);
      if (probe.head > this.head) {
        this.head = probe.head;
        this.emit();
      }
    } catch {
      // The next round tries again; REST errors show on the pages.
    }
  }

  private emit(): void {
    for (const l of this.listeners) l();
  }

  private tick(): void {
    const t = Math.floor(Date.now() / 1000);
    const last = this.buckets[this.buckets.length - 1];
    if (last && last.t >= t) return;
    // Seconds without traffic are zeros, so the chart's time axis stays continuous.
    for (let s = last ? Math.max(last.t + 1, t - WINDOW_SECONDS) : t - WINDOW_SECONDS + 1; s <= t; s++) {
      this.buckets.push({ t: s, records: 0, events: 0 });
    }
    if (this.buckets.length > WINDOW_SECONDS) this.buckets.splice(0, this.buckets.length - WINDOW_SECONDS);
    this.emit();
  }

  private async token(): Promise<string> {
    if (this.session.kind === 'token') return this.session.secret;
    return (await this.api.mintToken(3600)).token;
  }

  private async connect(): Promise<void> {
    if (this.stopped) return;
    this.state = 'connecting';
    this.emit();
    let token: string;
    try {
      token = await this.token();
    } catch (err) {
      this.error = err instanceof Error ? err.message : String(err);
      this.scheduleReconnect();
      return;
    }
    const scheme = location.protocol === 'https:' ? 'wss' : 'ws';
    const ws = new WebSocket(`${scheme}://${location.host}/v1/realtime`);
    this.ws = ws;
    ws.onopen = () => ws.send(JSON.stringify({ type: 'hello', token, protocol: 1 }));
    ws.onmessage = (e) => this.onFrame(JSON.parse(String(e.data)) as ServerMessage);
    ws.onclose = (e) => {
      if (this.ws !== ws) return;
      this.ws = null;
      if (e.reason) this.error = `disconnected: ${e.reason}`;
      this.scheduleReconnect();
    };
  }

  private scheduleReconnect(): void {
    if (this.stopped) return;
    this.state = 'closed';
    this.emit();
    this.timer = setTimeout(() => void this.connect(), this.retryMs);
    this.retryMs = Math.min(this.retryMs * 2, 15_000);
  }

  private subscribe(channel: string): void {
    if (this.state !== 'open' || !this.ws) return;
    // Resume after the last event seen on the channel (or from the head at page load), so nothing
    // written while the dashboard was reconnecting or before it found the collection is missed.
    const since = this.channels.get(channel) ?? this.startHead;
    const message = {
      type: 'subscribe',
      rid: `s${++this.rid}`,
      channel,
      ...(since === null ? {} : { since }),
    };
    this.ws.send(JSON.stringify(message));
  }

  private onFrame(msg: ServerMessage): void {
    switch (msg.type) {
      case 'welcome':
        this.state = 'open';
        this.error = null;
        this.user = msg.user;
        this.retryMs = 500;
        for (const channel of this.channels.keys()) this.subscribe(channel);
        break;
      case 'subscribed':
        this.head = Math.max(this.head, msg.cursor);
        break;
      case 'event':
        this.record(msg);
        break;
      case 'health':
        this.health = msg.platforms;
        break;
      case 'conflict':
        this.conflicts.set(msg.conflict.id, msg.conflict);
        break;
      case 'error':
        this.error = `${msg.code}: ${msg.message}`;
        break;
      default:
        return;
    }
    this.emit();
  }

  /**
   * Counts an event in the second it was committed; the channels watched (`events:*`, one `records:`
   * per collection) never carry the same event twice.
   */
  private record(event: EventMessage): void {
    this.channels.set(event.channel, event.seq);
    this.remember({
      seq: event.seq,
      kind: event.kind,
      collection: event.collection,
      id: event.id,
      op: event.op,
      version: event.version,
      type: event.kind === 'event' ? event.eventType : undefined,
      actor: event.actor,
      ts: event.ts,
      source: event.source,
      target: event.target,
    });
  }

  /** Counts an entry in the chart's second it was committed in, and keeps it in the activity list. */
  private remember(event: Activity): void {
    this.head = Math.max(this.head, event.seq);
    this.tick();
    const first = this.buckets[0]!.t;
    const at = Math.floor(Date.parse(event.ts) / 1000);
    const bucket = this.buckets[Math.min(this.buckets.length - 1, Math.max(0, at - first))];
    if (bucket && at >= first) {
      if (event.kind === 'record') bucket.records += 1;
      else bucket.events += 1;
    }
    const entry: Activity = {
      seq: event.seq,
      kind: event.kind,
      collection: event.collection,
      id: event.id,
      op: event.op,
      version: event.version,
      type: event.type,
      actor: event.actor,
      ts: event.ts,
      source: event.source,
      target: event.target,
    };
    let i = 0;
    while (i < this.recent.length && this.recent[i]!.seq > entry.seq) i++;
    if (this.recent[i]?.seq === entry.seq) return;
    this.recent.splice(i, 0, entry);
    if (this.recent.length > RECENT) this.recent.length = RECENT;
  }
}
