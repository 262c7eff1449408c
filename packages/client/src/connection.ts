/**
 * The connection state machine: one WebSocket at a time to one of the configured server URLs,
 * authenticated with `hello`, watched for silence, and replaced with exponential backoff and full
 * jitter when it fails. The state changes only through `setState`, which emits a `status` event with
 * the old state, the new one and a reason code for every transition:
 *
 *   offline ──connect──▶ connecting ──welcome──▶ syncing ──synced──▶ open
 *      ▲                     │                      │                 │
 *      └───── socket closed, silent, refused (reconnect with backoff) ┘
 *   any ──close() or the token refused for good──▶ closed (terminal)
 *
 * It knows nothing about subscriptions, caches or queues; the client listens to `welcome` to resume
 * them and calls `markSynced` when they have caught up. It must never reconnect after `closed`, and
 * never act on a socket it has already given up (every socket callback checks its epoch).
 */
import {
  CLOSE_CODES,
  type ClientMessage,
  type DeviceInfo,
  PROTOCOL_VERSION,
  type ServerMessage,
} from '@syncbridge/protocol';
import { type BackoffOptions, backoffDelay } from './backoff.ts';
import { type ConnectionState, type StatusChange, StatusReason } from './codes.ts';
import { TypedEventEmitter } from './emitter.ts';
import type { ClientLink, LinkEvents } from './link.ts';
import {
  frameText,
  resolveWebSocket,
  type WebSocketConstructor,
  type WebSocketLike,
  WS_OPEN,
} from './transport.ts';

/** A token, or a function that returns a fresh one (called for every connection attempt). */
export type TokenSource = string | (() => string | Promise<string>);

export interface ConnectionOptions {
  urls: string[];
  token: TokenSource;
  deviceId?: string;
  /** Registers the device (needs `deviceId`) in every `hello`. */
  device?: DeviceInfo;
  /** Wire features named in `hello` (`batch`). */
  capabilities?: string[];
  /** Ask the server for permessage-deflate (`?compress=1`). */
  compression?: boolean;
  backoff?: BackoffOptions;
  /** Give up on an attempt that has not been welcomed after this long. Default 10 s. */
  connectTimeoutMs?: number;
  /** How long a `pong` may take. Default: the server's heartbeat interval. */
  pongTimeoutMs?: number;
  WebSocket?: WebSocketConstructor;
}

/** The events of a connection: those of every link (link.ts). */
export type ConnectionEvents = LinkEvents;

type DropReason =
  | typeof StatusReason.CONNECT_TIMEOUT
  | typeof StatusReason.NO_MESSAGE_TIMEOUT
  | typeof StatusReason.PONG_TIMEOUT;

export class Connection implements ClientLink {
  readonly events = new TypedEventEmitter<ConnectionEvents>();
  readonly transport = 'websocket' as const;
  private current: ConnectionState = 'offline';
  private socket: WebSocketLike | null = null;
  /** Incremented for every socket; callbacks of an older socket are ignored. */
  private epoch = 0;
  private urlIndex = 0;
  private failures = 0;
  private reconnectTimer: ReturnType<typeof setTimeout> | null = null;
  private watchdog: ReturnType<typeof setInterval> | null = null;
  private attemptStartedAt = 0;
  private heartbeatMs = 0;
  private lastMessageAt = 0;
  private lastPingAt = 0;
  private pongDueSince: number | null = null;
  private authRetryUsed = false;
  private lastAuthError: string | null = null;
  /** The current attempt's upgrade was refused with HTTP 401 (a token in the URL; `ws` reports it). */
  private upgradeUnauthorized = false;
  /** Set by `disconnect()`: stay offline until `connect()`. */
  private paused = false;
  /** The token of the current (or last) connection attempt. */
  private token: string | null = null;

  constructor(private readonly options: ConnectionOptions) {
    if (options.urls.length === 0) throw new TypeError('at least one server url is needed');
  }

  get state(): ConnectionState {
    return this.current;
  }

  /** The URL of the current (or next) connection attempt. */
  get url(): string {
    return this.options.urls[this.urlIndex]!;
  }

  /** True once the server has welcomed this connection: requests can be sent. */
  get authenticated(): boolean {
    return this.current === 'syncing' || this.current === 'open';
  }

  /** The epoch of the current socket, to tie asynchronous catch-up work to one connection. */
  get connectionEpoch(): number {
    return this.epoch;
  }

  /** The token of the current connection (or the last attempt), for REST calls beside it. */
  get currentToken(): string | null {
    return this.token;
  }

  /** Starts connecting when offline; does nothing when already connecting or connected. */
  connect(): void {
    this.paused = false;
    if (this.current !== 'offline') return;
    this.clearReconnectTimer();
    void this.attempt(StatusReason.CONNECT_CALLED);
  }

  /** Sends a message on the authenticated connection; returns false when there is none. */
  send(message: ClientMessage): boolean {
    if (!this.authenticated || !this.socket || this.socket.readyState !== WS_OPEN) return false;
    this.socket.send(JSON.stringify(message));
    return true;
  }

  /** Called by the client when subscriptions and the offline queue have caught up on connection `epoch`. */
  markSynced(epoch: number): void {
    if (epoch === this.epoch && this.current === 'syncing') this.setState('open', StatusReason.SYNCED);
  }

  /**
   * Goes offline and stays there until `connect()`: the socket is closed and nothing reconnects. Writes
   * keep queueing meanwhile. Does nothing once closed.
   */
  disconnect(): void {
    if (this.current === 'closed') return;
    this.paused = true;
    this.clearReconnectTimer();
    this.stopWatchdog();
    const socket = this.socket;
    this.socket = null;
    this.epoch += 1;
    if (socket) {
      try {
        socket.close(1000, 'client disconnected');
      } catch {
        // a socket still connecting may throw on close in some runtimes; it is abandoned either way
      }
    }
    this.setState('offline', StatusReason.CLIENT_DISCONNECTED);
  }

  /** Closes for good: no reconnect after this. Resolves once the socket has closed (at most 1 s). */
  async close(): Promise<void> {
    if (this.current === 'closed') return;
    this.clearReconnectTimer();
    this.stopWatchdog();
    const socket = this.socket;
    this.socket = null;
    this.epoch += 1;
    this.setState('closed', StatusReason.CLIENT_CLOSED);
    if (!socket) return;
    const closed = new Promise<void>((resolve) => {
      socket.onclose = () => resolve();
      setTimeout(resolve, 1000);
    });
    try {
      socket.close(1000, 'client closed');
    } catch {
      // closing a socket that never opened may throw in some runtimes; it is gone either way
    }
    await closed;
  }

  private setState(
    newState: ConnectionState,
    reason: StatusChange['reason'],
    extra: { closeCode?: number; message?: string } = {},
  ): void {
    const oldState = this.current;
    if (oldState === newState) return;
    this.current = newState;
    const change: StatusChange = { newState, oldState, reason, url: this.url };
    if (extra.closeCode !== undefined) change.closeCode = extra.closeCode;
    if (extra.message) change.message = extra.message;
    this.events.emit('status', change);
  }

  private async attempt(reason: StatusChange['reason']): Promise<void> {
    const epoch = ++this.epoch;
    this.setState('connecting', reason);
    let token: string;
    let WebSocketImpl: WebSocketConstructor;
    try {
      const source = this.options.token;
      token = typeof source === 'string' ? source : await source();
      if (typeof token !== 'string' || token.length === 0)
        throw new TypeError('the token provider returned no token');
      this.token = token;
      WebSocketImpl = await resolveWebSocket(this.options.WebSocket);
    } catch (err) {
      if (epoch !== this.epoch || this.current === 'closed') return;
      this.setState('offline', StatusReason.TOKEN_PROVIDER_FAILED, { message: (err as Error).message });
      this.scheduleReconnect();
      return;
    }
    if (epoch !== this.epoch || this.current === 'closed') return;
    let socket: WebSocketLike;
    try {
      socket = new WebSocketImpl(this.options.compression ? withQuery(this.url, 'compress', '1') : this.url);
    } catch (err) {
      this.setState('offline', StatusReason.CONNECT_FAILED, { message: (err as Error).message });
      this.scheduleReconnect();
      return;
    }
    this.socket = socket;
    this.lastAuthError = null;
    this.upgradeUnauthorized = false;
    this.heartbeatMs = 0;
    this.attemptStartedAt = Date.now();
    this.startWatchdog(250);
    let opened = false;
    socket.onopen = () => {
      if (epoch !== this.epoch) return;
      opened = true;
      socket.send(
        JSON.stringify({
          type: 'hello',
          rid: `hello-${epoch}`,
          token,
          protocol: PROTOCOL_VERSION,
          ...(this.options.deviceId ? { deviceId: this.options.deviceId } : {}),
          ...(this.options.deviceId && this.options.device ? { device: this.options.device } : {}),
          ...(this.options.capabilities ? { capabilities: this.options.capabilities } : {}),
        }),
      );
    };
    socket.onmessage = (event) => {
      if (epoch !== this.epoch) return;
      let message: ServerMessage;
      try {
        message = JSON.parse(frameText(event.data)) as ServerMessage;
      } catch {
        return;
      }
      this.receive(message);
    };
    socket.onerror = (event) => {
      if (epoch !== this.epoch) return;
      // Node's `ws` names the status of a refused upgrade ("Unexpected server response: 401"); browsers
      // say nothing. A 401 there is a refused token, as final as a close with 1008 after `hello`.
      const message = (event as { message?: unknown } | null)?.message;
      if (typeof message === 'string' && /\bUnexpected server response: 401\b/.test(message)) {
        this.upgradeUnauthorized = true;
      }
    };
    socket.onclose = (event) => {
      if (epoch !== this.epoch) return;
      this.handleClose(opened, event.code, event.reason);
    };
  }

  private receive(message: ServerMessage): void {
    this.lastMessageAt = Date.now();
    // Before the welcome, any error is why the server is about to close (1008): a refused `hello`.
    if (message.type === 'error' && (message.code === 'UNAUTHORIZED' || !this.authenticated)) {
      this.lastAuthError = message.message;
    }
    if (!this.authenticated) {
      if (message.type !== 'welcome') return;
      this.heartbeatMs = message.heartbeatMs;
      this.failures = 0;
      this.authRetryUsed = false;
      this.lastPingAt = Date.now();
      this.pongDueSince = null;
      this.startWatchdog(Math.min(1000, Math.max(25, Math.floor(message.heartbeatMs / 4))));
      this.setState('syncing', StatusReason.AUTHENTICATED);
      this.events.emit('welcome', message);
      return;
    }
    if (message.type === 'pong') this.pongDueSince = null;
    if (message.type === 'events') {
      // A batch is its events, one by one, in order.
      for (const event of message.events) {
        this.events.emit('message', { ...event, type: 'event', channel: message.channel });
      }
      return;
    }
    this.events.emit('message', message);
  }

  private handleClose(opened: boolean, code: number, reason: string): void {
    this.socket = null;
    this.stopWatchdog();
    if (this.current === 'closed') return;
    if (code === CLOSE_CODES.POLICY || (!opened && this.upgradeUnauthorized)) {
      const message =
        this.lastAuthError ??
        (this.upgradeUnauthorized ? 'the server refused the token at the upgrade (HTTP 401)' : reason);
      if (typeof this.options.token === 'function' && !this.authRetryUsed) {
        // The token may simply have expired: fetch a fresh one and try once more at once.
        this.authRetryUsed = true;
        const why = /expired/i.test(message) ? StatusReason.TOKEN_EXPIRED : StatusReason.TOKEN_REFRESH;
        this.setState('offline', why, { closeCode: code, message });
        void this.attempt(StatusReason.RECONNECT);
        return;
      }
      this.setState('closed', StatusReason.UNAUTHORIZED, { closeCode: code, message });
      return;
    }
    const why = opened ? StatusReason.TRANSPORT_CLOSED : StatusReason.CONNECT_FAILED;
    this.setState('offline', why, { closeCode: code, message: reason });
    this.scheduleReconnect();
  }

  /** Gives up on the current socket (it looks dead) and reconnects. */
  private drop(reason: DropReason): void {
    const socket = this.socket;
    this.socket = null;
    this.epoch += 1;
    this.stopWatchdog();
    if (socket) {
      const terminate = (socket as { terminate?: () => void }).terminate;
      try {
        if (typeof terminate === 'function') terminate.call(socket);
        else socket.close(4000, reason);
      } catch {
        // the socket is being abandoned; errors closing it change nothing
      }
    }
    this.setState('offline', reason);
    this.scheduleReconnect();
  }

  private scheduleReconnect(): void {
    this.clearReconnectTimer();
    if (this.paused) return;
    const urls = this.options.urls.length;
    this.failures += 1;
    this.urlIndex = (this.urlIndex + 1) % urls;
    // Within a round over the URLs the next server is tried at once; each new round backs off.
    const delay =
      this.failures % urls !== 0 ? 0 : backoffDelay(this.failures / urls - 1, this.options.backoff);
    this.reconnectTimer = setTimeout(() => {
      this.reconnectTimer = null;
      if (this.current === 'offline') void this.attempt(StatusReason.RECONNECT);
    }, delay);
  }

  private startWatchdog(intervalMs: number): void {
    this.stopWatchdog();
    this.watchdog = setInterval(() => this.checkAlive(), intervalMs);
  }

  private checkAlive(): void {
    const now = Date.now();
    if (!this.authenticated) {
      if (now - this.attemptStartedAt > (this.options.connectTimeoutMs ?? 10_000)) {
        this.drop(StatusReason.CONNECT_TIMEOUT);
      }
      return;
    }
    const heartbeat = this.heartbeatMs;
    if (now - this.lastMessageAt > heartbeat * 2) {
      this.drop(StatusReason.NO_MESSAGE_TIMEOUT);
      return;
    }
    if (this.pongDueSince !== null && now - this.pongDueSince > (this.options.pongTimeoutMs ?? heartbeat)) {
      this.drop(StatusReason.PONG_TIMEOUT);
      return;
    }
    if (this.pongDueSince === null && now - this.lastPingAt >= heartbeat) {
      this.lastPingAt = now;
      if (this.send({ type: 'ping' })) this.pongDueSince = now;
    }
  }

  private stopWatchdog(): void {
    if (this.watchdog) clearInterval(this.watchdog);
    this.watchdog = null;
  }

  private clearReconnectTimer(): void {
    if (this.reconnectTimer) clearTimeout(this.reconnectTimer);
    this.reconnectTimer = null;
  }
}

/** The URL with one query parameter set. */
function withQuery(url: string, key: string, value: string): string {
  const parsed = new URL(url);
  parsed.searchParams.set(key, value);
  return parsed.toString();
}
