/**
 * The link over server-sent events, for networks whose proxies refuse WebSocket upgrades: one
 * `GET /v1/stream` at a time carries every channel (read with fetch streaming, which Node and browsers
 * both have, and eventsource-parser), and requests go over REST (http-writes.ts). The stream's channels
 * are fixed when it opens, so a `subscribe` or `unsubscribe` reopens it with the new set, each channel
 * resuming from the position the last stream's `id:` gave it: no event is lost or repeated, and the
 * server's `subscribed` is passed on only for the channel that asked. A new connection (after a drop)
 * opens without channels, and the client subscribes them again from its own cursors, as on a WebSocket.
 * With `device` options, each connection first registers the device over REST (POST /v1/devices, what a
 * WebSocket `hello` carries), so the stream is paced by its budget, priorities and conflation.
 * It must never act on a stream it has given up (every callback checks its stream number), and
 * `close()` aborts the stream, a registration and every request still waiting for its answer.
 */
import {
  CLOSE_CODES,
  type ClientMessage,
  type Rid,
  type ServerMessage,
  type WelcomeMessage,
} from '@syncbridge/protocol';
import { createParser } from 'eventsource-parser';
import { backoffDelay } from './backoff.ts';
import { type ConnectionState, type StatusChange, StatusReason } from './codes.ts';
import { TypedEventEmitter } from './emitter.ts';
import { registerDevice, sendOverHttp, settleWithin, streamBaseOf } from './http-writes.ts';
import type { ClientLink, LinkEvents, LinkOptions } from './link.ts';

/** How long `close()` lets the last `ack` (flushed just before it) take to be answered. */
const ACK_GRACE_MS = 2_000;

interface Wanted {
  since?: number;
  snapshot?: boolean;
}

export class SseLink implements ClientLink {
  readonly events = new TypedEventEmitter<LinkEvents>();
  readonly transport = 'sse' as const;
  private current: ConnectionState = 'offline';
  private epoch = 0;
  /** Every stream opened (reopens included) gets the next number; older streams' data is ignored. */
  private stream = 0;
  /** The open stream's fetch (or the connection's device registration before it). */
  private controller: AbortController | null = null;
  /** Every request over REST; aborted by `close()`. */
  private readonly requests = new AbortController();
  /** Acks waiting for their answer: `close()` lets them finish (as a WebSocket sends what it queued). */
  private readonly acks = new Set<Promise<void>>();
  private token: string | null = null;
  private urlIndex = 0;
  private failures = 0;
  private paused = false;
  private authRetryUsed = false;
  private reconnectTimer: ReturnType<typeof setTimeout> | null = null;
  private reopenTimer: ReturnType<typeof setTimeout> | null = null;
  private watchdog: ReturnType<typeof setInterval> | null = null;
  private heartbeatMs = 0;
  private lastDataAt = 0;
  /** The channels the client wants, in the order they were subscribed. */
  private readonly wanted = new Map<string, Wanted>();
  /** Channel → seq it has everything up to, from the last stream's ids. */
  private readonly positions = new Map<string, number>();
  /** Channels whose `subscribe` waits for its `subscribed`, with its rid. */
  private readonly pendingRids = new Map<string, Rid | undefined>();
  /** The channels of the open stream, in its `channels=` order. */
  private streamChannels: string[] = [];
  /** The stream whose `welcome` opened this connection (later streams are reopens). */
  private welcomedStream = 0;

  constructor(private readonly options: LinkOptions) {
    if (options.urls.length === 0) throw new TypeError('at least one server url is needed');
  }

  get state(): ConnectionState {
    return this.current;
  }

  get authenticated(): boolean {
    return this.current === 'syncing' || this.current === 'open';
  }

  get connectionEpoch(): number {
    return this.epoch;
  }

  get currentToken(): string | null {
    return this.token;
  }

  private get url(): string {
    return this.options.urls[this.urlIndex]!;
  }

  connect(): void {
    this.paused = false;
    if (this.current !== 'offline') return;
    this.clearTimers();
    void this.attempt(StatusReason.CONNECT_CALLED);
  }

  disconnect(): void {
    if (this.current === 'closed') return;
    this.paused = true;
    this.abandon();
    this.setState('offline', StatusReason.CLIENT_DISCONNECTED);
  }

  async close(): Promise<void> {
    if (this.current === 'closed') return;
    this.abandon();
    this.setState('closed', StatusReason.CLIENT_CLOSED);
    await settleWithin([...this.acks], ACK_GRACE_MS);
    this.requests.abort();
  }

  markSynced(epoch: number): void {
    if (epoch === this.epoch && this.current === 'syncing') this.setState('open', StatusReason.SYNCED);
  }

  send(message: ClientMessage): boolean {
    if (!this.authenticated || !this.token) return false;
    const epoch = this.epoch;
    if (message.type === 'subscribe') {
      const wanted: Wanted = {};
      if (message.since !== undefined) wanted.since = message.since;
      if (message.snapshot) wanted.snapshot = true;
      this.wanted.delete(message.channel);
      this.wanted.set(message.channel, wanted);
      this.positions.delete(message.channel);
      this.pendingRids.set(message.channel, message.rid);
      this.scheduleReopen();
      return true;
    }
    if (message.type === 'unsubscribe') {
      this.wanted.delete(message.channel);
      this.positions.delete(message.channel);
      this.pendingRids.delete(message.channel);
      this.scheduleReopen();
      queueMicrotask(() => {
        if (epoch === this.epoch)
          this.events.emit('message', { type: 'unsubscribed', rid: message.rid, channel: message.channel });
      });
      return true;
    }
    if (message.type === 'hello') return true;
    const target = {
      base: streamBaseOf(this.url),
      token: this.token,
      deviceId: this.options.deviceId,
      fetch: this.fetchImpl(),
      signal: this.requests.signal,
    };
    const sent = sendOverHttp(target, message).then((answer) => {
      if (epoch !== this.epoch) return;
      // No answer at all: the request's fate is unknown, as when a socket drops; reconnecting fails it
      // as DISCONNECTED and the queue sends it again with the same mid.
      if (answer === 'lost') this.lose(StatusReason.TRANSPORT_CLOSED, 'a request over HTTP got no answer');
      else if (answer) this.events.emit('message', answer);
    });
    if (message.type === 'ack') {
      this.acks.add(sent);
      void sent.finally(() => this.acks.delete(sent));
    }
    return true;
  }

  private fetchImpl(): typeof fetch {
    return this.options.fetch ?? globalThis.fetch.bind(globalThis);
  }

  private setState(newState: ConnectionState, reason: StatusReason, extra: Partial<StatusChange> = {}): void {
    const oldState = this.current;
    if (oldState === newState) return;
    this.current = newState;
    this.events.emit('status', { newState, oldState, reason, url: this.url, ...extra });
  }

  /** Opens a new connection: a stream without channels, whose `welcome` starts the client's resume. */
  private async attempt(reason: StatusReason): Promise<void> {
    const epoch = ++this.epoch;
    this.setState('connecting', reason);
    this.wanted.clear();
    this.positions.clear();
    this.pendingRids.clear();
    try {
      const source = this.options.token;
      const token = typeof source === 'string' ? source : await source();
      if (typeof token !== 'string' || token.length === 0)
        throw new TypeError('the token provider returned no token');
      this.token = token;
    } catch (err) {
      if (epoch !== this.epoch || this.current === 'closed') return;
      this.setState('offline', StatusReason.TOKEN_PROVIDER_FAILED, { message: (err as Error).message });
      this.scheduleReconnect();
      return;
    }
    if (epoch !== this.epoch || this.current === 'closed') return;
    const started = Date.now();
    this.startWatchdog(() => {
      if (!this.authenticated && Date.now() - started > (this.options.connectTimeoutMs ?? 10_000))
        this.lose(StatusReason.CONNECT_TIMEOUT);
    });
    if (this.options.deviceId && this.options.device && !(await this.register(epoch))) return;
    void this.open(epoch);
  }

  /** Registers the device before the connection's first stream; false when the attempt is over. */
  private async register(epoch: number): Promise<boolean> {
    const controller = new AbortController();
    this.controller = controller;
    const answer = await registerDevice(
      {
        base: streamBaseOf(this.url),
        token: this.token!,
        deviceId: this.options.deviceId!,
        fetch: this.fetchImpl(),
        signal: controller.signal,
      },
      this.options.device!,
    );
    if (epoch !== this.epoch || this.current === 'closed') return false;
    if (answer === 'lost') {
      this.lose(StatusReason.CONNECT_FAILED, 'registering the device got no answer');
      return false;
    }
    if (!answer.ok) {
      if (answer.status === 401) this.refused(answer.message);
      else this.lose(StatusReason.CONNECT_FAILED, `registering the device: ${answer.message}`);
      return false;
    }
    return true;
  }

  private streamUrl(): string {
    const url = new URL(`${streamBaseOf(this.url)}/v1/stream`);
    const channels = [...this.wanted.keys()];
    const since: string[] = [];
    for (const channel of channels) {
      url.searchParams.append('channels', channel);
      const wanted = this.wanted.get(channel)!;
      const at = this.positions.get(channel) ?? wanted.since;
      since.push(at === undefined ? '' : String(at));
      if (at === undefined && wanted.snapshot) url.searchParams.append('snapshot', channel);
    }
    if (since.some((s) => s !== '')) url.searchParams.set('since', since.join(','));
    if (this.options.deviceId) url.searchParams.set('deviceId', this.options.deviceId);
    this.streamChannels = channels;
    return url.toString();
  }

  /** Opens a stream for the current set of channels (a reopen keeps the connection's epoch). */
  private async open(epoch: number): Promise<void> {
    const stream = ++this.stream;
    this.controller?.abort();
    const controller = new AbortController();
    this.controller = controller;
    const live = () => epoch === this.epoch && stream === this.stream;
    let res: Response;
    try {
      res = await this.fetchImpl()(this.streamUrl(), {
        headers: { Authorization: `Bearer ${this.token}`, Accept: 'text/event-stream' },
        signal: controller.signal,
      });
    } catch (err) {
      if (live())
        this.lose(
          this.authenticated ? StatusReason.TRANSPORT_CLOSED : StatusReason.CONNECT_FAILED,
          String(err),
        );
      return;
    }
    if (!live()) return void res.body?.cancel().catch(() => undefined);
    if (res.status === 401) {
      const body = (await res.json().catch(() => ({}))) as { error?: { message?: string } };
      return this.refused(body.error?.message ?? 'the server refused the token (HTTP 401)');
    }
    if (res.status !== 200 || !res.body) {
      const text = await res.text().catch(() => '');
      return this.lose(StatusReason.CONNECT_FAILED, `HTTP ${res.status} ${text.slice(0, 200)}`);
    }
    let closeCode: number | undefined;
    let closeReason = '';
    const parser = createParser({
      onEvent: (event) => {
        if (!live()) return;
        if (event.event === 'close') {
          const info = JSON.parse(event.data) as { code: number; reason: string };
          closeCode = info.code;
          closeReason = info.reason;
          return;
        }
        let message: ServerMessage;
        try {
          message = JSON.parse(event.data) as ServerMessage;
        } catch {
          return;
        }
        if (event.id) this.notePositions(event.id);
        this.receive(message, epoch, stream);
      },
    });
    const reader = res.body.getReader();
    const decoder = new TextDecoder();
    try {
      for (;;) {
        const { done, value } = await reader.read();
        if (done || !live()) break;
        this.lastDataAt = Date.now();
        parser.feed(decoder.decode(value, { stream: true }));
      }
    } catch {
      // dropped or aborted
    }
    if (!live()) return;
    if (closeCode === CLOSE_CODES.POLICY) return this.refused(closeReason);
    this.lose(
      this.authenticated ? StatusReason.TRANSPORT_CLOSED : StatusReason.CONNECT_FAILED,
      closeReason,
      closeCode,
    );
  }

  /** An id is one seq for every channel of the stream, or one place per channel. */
  private notePositions(id: string): void {
    const places = id.split(',');
    this.streamChannels.forEach((channel, i) => {
      const place = places.length === 1 ? places[0]! : places[i];
      if (place === undefined || place === '') return;
      if (this.wanted.has(channel)) this.positions.set(channel, Number(place));
    });
  }

  private receive(message: ServerMessage, epoch: number, stream: number): void {
    if (message.type === 'welcome') {
      if (this.authenticated) return; // a reopen's welcome: the connection goes on
      this.heartbeatMs = message.heartbeatMs;
      this.welcomedStream = stream;
      this.failures = 0;
      this.authRetryUsed = false;
      this.lastDataAt = Date.now();
      this.startWatchdog(() => {
        if (Date.now() - this.lastDataAt > this.heartbeatMs * 2) this.lose(StatusReason.NO_MESSAGE_TIMEOUT);
      });
      this.setState('syncing', StatusReason.AUTHENTICATED);
      this.events.emit('welcome', message as WelcomeMessage);
      return;
    }
    if (!this.authenticated || epoch !== this.epoch) return;
    if (message.type === 'subscribed') {
      // Only the channel that asked hears of it; the others of a reopened stream simply go on.
      if (!this.pendingRids.has(message.channel)) return;
      const rid = this.pendingRids.get(message.channel);
      this.pendingRids.delete(message.channel);
      this.events.emit('message', { ...message, ...(rid === undefined ? {} : { rid }) });
      return;
    }
    if (message.type === 'error' && typeof message.rid === 'string' && this.wanted.has(message.rid)) {
      // A channel the stream could not subscribe: the answer to that channel's subscribe.
      const channel = message.rid;
      const rid = this.pendingRids.get(channel);
      this.pendingRids.delete(channel);
      this.wanted.delete(channel);
      const { rid: _drop, ...rest } = message;
      this.events.emit('message', rid === undefined ? rest : { ...rest, rid });
      return;
    }
    // A reopen's `pending` repeats what the connection was told at its welcome.
    if (message.type === 'pending' && stream !== this.welcomedStream) return;
    this.events.emit('message', message);
  }

  private scheduleReopen(): void {
    if (this.reopenTimer) return;
    const epoch = this.epoch;
    this.reopenTimer = setTimeout(() => {
      this.reopenTimer = null;
      if (epoch === this.epoch && this.authenticated) void this.open(epoch);
    }, 0);
  }

  /** The server refused the token: once more with a fresh one from a provider, else stop. */
  private refused(message: string): void {
    this.abandon();
    if (typeof this.options.token === 'function' && !this.authRetryUsed) {
      this.authRetryUsed = true;
      const why = /expired/i.test(message) ? StatusReason.TOKEN_EXPIRED : StatusReason.TOKEN_REFRESH;
      this.setState('offline', why, { message, closeCode: CLOSE_CODES.POLICY });
      void this.attempt(StatusReason.RECONNECT);
      return;
    }
    this.setState('closed', StatusReason.UNAUTHORIZED, { message, closeCode: CLOSE_CODES.POLICY });
  }

  /** The connection is gone (or never came): offline, and reconnect with backoff. */
  private lose(reason: StatusReason, message?: string, closeCode?: number): void {
    if (this.current === 'closed') return;
    this.abandon();
    this.setState('offline', reason, {
      ...(message ? { message } : {}),
      ...(closeCode ? { closeCode } : {}),
    });
    this.scheduleReconnect();
  }

  private abandon(): void {
    this.epoch += 1;
    this.stream += 1;
    this.controller?.abort();
    this.controller = null;
    this.clearTimers();
  }

  private scheduleReconnect(): void {
    if (this.reconnectTimer) clearTimeout(this.reconnectTimer);
    if (this.paused) return;
    const urls = this.options.urls.length;
    this.failures += 1;
    this.urlIndex = (this.urlIndex + 1) % urls;
    const delay =
      this.failures % urls !== 0 ? 0 : backoffDelay(this.failures / urls - 1, this.options.backoff);
    this.reconnectTimer = setTimeout(() => {
      this.reconnectTimer = null;
      if (this.current === 'offline') void this.attempt(StatusReason.RECONNECT);
    }, delay);
  }

  private startWatchdog(check: () => void): void {
    if (this.watchdog) clearInterval(this.watchdog);
    this.watchdog = setInterval(check, 250);
  }

  private clearTimers(): void {
    if (this.reconnectTimer) clearTimeout(this.reconnectTimer);
    if (this.reopenTimer) clearTimeout(this.reopenTimer);
    if (this.watchdog) clearInterval(this.watchdog);
    this.reconnectTimer = null;
    this.reopenTimer = null;
    this.watchdog = null;
  }
}
