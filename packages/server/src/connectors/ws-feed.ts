/**
 * The upstream WebSocket feed connector (`kind: ws-feed`): connects to a broker's feed with the configured
 * headers and login message, subscribes the wanted symbols with the subscribe template, turns messages
 * into ticks and depth (rules or a `parse` hook) and publishes them to its topic; ticks are persisted in
 * batches. When the connection drops, or stays silent past the heartbeat timeout, it reconnects with
 * exponential backoff and subscribes every wanted symbol again.
 */
import WebSocket from 'ws';
import { Backoff, DEFAULT_BACKOFF } from '../core/backoff.ts';
import { type WsFeedOptions, WsFeedOptions as WsFeedSchema } from './config.ts';
import { type FeedParser, type ParsedFeedMessage, parseByRules } from './feed-parse.ts';
import { renderTemplate, templateVariables } from './json-path.ts';
import { RateMeter } from './rate.ts';
import type {
  Connector,
  ConnectorContext,
  ConnectorHealth,
  ConnectorState,
  FeedControl,
  Tick,
} from './types.ts';

export interface WsFeedHooks {
  /** Parses each message instead of the `parse` rules. */
  parse?: FeedParser;
  /**
   * Variables for the templates and headers at each connect (e.g. a fresh token as `{{token}}`). The
   * manager passes the `env.` / `secrets.` values the definition may read; the feed never reads the
   * process environment itself.
   */
  variables?: () => Promise<Record<string, unknown>> | Record<string, unknown>;
}

const DEFAULT_INTERVAL_MS = 10_000;
const DEFAULT_TIMEOUT_MS = 30_000;

function redactUrl(url: string): string {
  try {
    const u = new URL(url);
    if (u.password) u.password = '***';
    for (const key of [...u.searchParams.keys()]) {
      if (/token|key|secret|auth|pass/i.test(key)) u.searchParams.set(key, '***');
    }
    return u.toString();
  } catch {
    return 'invalid url';
  }
}

export class WsFeedConnector implements Connector {
  readonly kind = 'ws-feed';
  readonly name: string;
  readonly tenant: string;
  readonly topic: string;
  readonly feed: FeedControl;
  private ctx: ConnectorContext | null = null;
  private ws: WebSocket | null = null;
  private state: ConnectorState = 'stopped';
  private stopped = true;
  private desired = new Set<string>();
  private readonly active = new Set<string>();
  private readonly backoff: Backoff;
  private reconnectTimer: NodeJS.Timeout | null = null;
  private reconnectAt = 0;
  private heartbeatTimer: NodeJS.Timeout | null = null;
  private lastMessageAt = 0;
  private lastPingAt = 0;
  private startedAt = 0;
  private connectedAt: number | null = null;
  private lastTickAt: number | null = null;
  private lastError: string | null = null;
  private readonly rate = new RateMeter();
  private readonly counts = { ticks: 0, depth: 0, messages: 0, reconnects: 0, connects: 0, parseErrors: 0 };
  private readonly perMessage: boolean;
  private readonly persist: boolean;

  constructor(
    readonly options: WsFeedOptions,
    private readonly hooks: WsFeedHooks = {},
  ) {
    this.name = options.name;
    this.tenant = options.tenant;
    this.topic = options.topic ?? options.name;
    this.persist = options.persist ?? true;
    this.backoff = new Backoff({ ...DEFAULT_BACKOFF, ...options.reconnect });
    const vars = templateVariables(options.subscribeMessage);
    this.perMessage = !vars.has('symbols') && vars.has('symbol');
    const self = this;
    this.feed = {
      get topic() {
        return self.topic;
      },
      setSymbols: (symbols) => this.setSymbols(symbols),
      activeSymbols: () => [...this.active].sort(),
    };
  }

  /** The options schema, for users building one in code. */
  static readonly schema = WsFeedSchema;

  async start(ctx: ConnectorContext): Promise<void> {
    this.ctx = ctx;
    this.stopped = false;
    this.startedAt = Date.now();
    this.state = 'starting';
    for (const s of this.options.symbols ?? []) this.desired.add(s);
    await ctx.topics.declare(this.topic);
    const every = Math.max(
      5,
      Math.floor(
        Math.min(
          this.options.heartbeat?.intervalMs ?? DEFAULT_INTERVAL_MS,
          this.options.heartbeat?.timeoutMs ?? DEFAULT_TIMEOUT_MS,
        ) / 4,
      ),
    );
    this.heartbeatTimer = setInterval(() => this.heartbeat(), every);
    this.heartbeatTimer.unref();
    void this.connect();
  }

  private async variables(): Promise<Record<string, unknown>> {
    return { ...((await this.hooks.variables?.()) ?? {}) };
  }

  private async connect(): Promise<void> {
    if (this.stopped) return;
    let vars: Record<string, unknown>;
    try {
      vars = await this.variables();
    } catch (err) {
      this.lastError = `could not prepare the connection: ${(err as Error).message}`;
      this.scheduleReconnect();
      return;
    }
    if (this.stopped) return;
    const headers = renderTemplate(this.options.headers ?? {}, vars) as Record<string, string>;
    const ws = new WebSocket(this.options.url, { headers, handshakeTimeout: 10_000 });
    this.ws = ws;
    ws.on('open', () => {
      if (this.ws !== ws) return;
      this.state = 'running';
      this.connectedAt = Date.now();
      this.lastMessageAt = Date.now();
      this.counts.connects += 1;
      this.ctx?.logger.info({ url: redactUrl(this.options.url) }, 'feed connected');
      if (this.options.authMessage !== undefined) {
        ws.send(JSON.stringify(renderTemplate(this.options.authMessage, vars)));
      }
      this.active.clear();
      this.sendSubscribe([...this.desired]);
    });
    ws.on('message', (data: Buffer, isBinary: boolean) => {
      if (this.ws === ws) this.onMessage(data, isBinary);
    });
    ws.on('pong', () => {
      this.lastMessageAt = Date.now();
    });
    ws.on('error', (err) => {
      this.lastError = err.message;
    });
    ws.on('close', (code, reason) => {
      if (this.ws !== ws) return;
      this.ws = null;
      this.active.clear();
      this.connectedAt = null;
      if (this.stopped) return;
      if (!this.lastError || code !== 1006)
        this.lastError = `closed by upstream: ${code} ${reason.toString()}`.trim();
      this.scheduleReconnect();
    });
  }

  private scheduleReconnect(): void {
    if (this.stopped) return;
    this.state = 'backing_off';
    const delay = this.backoff.next();
    this.counts.reconnects += 1;
    this.reconnectAt = Date.now() + delay;
    this.ctx?.logger.warn({ delayMs: delay, error: this.lastError }, 'feed disconnected; reconnecting');
    this.reconnectTimer = setTimeout(() => {
      this.reconnectTimer = null;
      void this.connect();
    }, delay);
    this.reconnectTimer.unref();
  }

  private heartbeat(): void {
    const ws = this.ws;
    if (!ws || ws.readyState !== WebSocket.OPEN) return;
    const now = Date.now();
    const interval = this.options.heartbeat?.intervalMs ?? DEFAULT_INTERVAL_MS;
    const timeout = this.options.heartbeat?.timeoutMs ?? DEFAULT_TIMEOUT_MS;
    const idle = now - this.lastMessageAt;
    if (idle > timeout) {
      this.lastError = `no message or pong from upstream for ${idle} ms`;
      ws.terminate();
      return;
    }
    if (idle >= interval && now - this.lastPingAt >= interval) {
      this.lastPingAt = now;
      if (this.options.heartbeat?.message !== undefined) {
        ws.send(JSON.stringify(renderTemplate(this.options.heartbeat.message, {})));
      } else ws.ping();
    }
  }

  private onMessage(data: Buffer, isBinary: boolean): void {
    const ctx = this.ctx;
    if (!ctx) return;
    this.lastMessageAt = Date.now();
    this.counts.messages += 1;
    if (this.connectedAt !== null && this.backoff.attempts > 0) {
      // The first message of a new connection: it works, so the next outage starts from the first delay.
      this.backoff.reset();
      this.lastError = null;
    }
    let message: unknown;
    try {
      message = JSON.parse(isBinary ? data.toString('utf8') : data.toString());
    } catch {
      this.counts.parseErrors += 1;
      return;
    }
    const parsed: ParsedFeedMessage = { ticks: [], depth: [] };
    for (const one of Array.isArray(message) && !this.hooks.parse ? message : [message]) {
      let result: Partial<ParsedFeedMessage> | null;
      try {
        result = this.hooks.parse ? this.hooks.parse(one) : parseByRules(one, this.options.parse ?? {});
      } catch (err) {
        this.counts.parseErrors += 1;
        this.lastError = `parse hook failed: ${(err as Error).message}`;
        continue;
      }
      if (!result) continue;
      if (result.ticks) parsed.ticks.push(...result.ticks);
      if (result.depth) parsed.depth.push(...result.depth);
    }
    if (parsed.ticks.length > 0) {
      const published: Tick[] = [];
      for (const input of parsed.ticks) {
        if (typeof input.symbol !== 'string' || input.symbol === '') continue;
        published.push(ctx.topics.tick(this.topic, input));
      }
      this.counts.ticks += published.length;
      this.rate.add(published.length);
      this.lastTickAt = Date.now();
      if (this.persist && published.length > 0) ctx.persistTicks(this.topic, published);
    }
    for (const input of parsed.depth) {
      if (typeof input.symbol !== 'string' || input.symbol === '') continue;
      ctx.topics.depth(this.topic, input);
      this.counts.depth += 1;
    }
  }

  private send(ws: WebSocket, message: unknown): void {
    if (ws.readyState === WebSocket.OPEN) ws.send(JSON.stringify(message));
  }

  private messages(template: unknown, symbols: string[]): unknown[] {
    if (this.perMessage)
      return symbols.map((symbol) => renderTemplate(template, { symbol, symbols: [symbol] }));
    const out: unknown[] = [];
    const size = this.options.symbolsPerMessage ?? 500;
    for (let i = 0; i < symbols.length; i += size) {
      const chunk = symbols.slice(i, i + size);
      out.push(renderTemplate(template, { symbols: chunk, symbol: chunk[0] }));
    }
    return out;
  }

  private sendSubscribe(symbols: string[]): void {
    const ws = this.ws;
    if (!ws || ws.readyState !== WebSocket.OPEN || symbols.length === 0) return;
    for (const m of this.messages(this.options.subscribeMessage, symbols)) this.send(ws, m);
    for (const s of symbols) this.active.add(s);
  }

  private sendUnsubscribe(symbols: string[]): void {
    const ws = this.ws;
    for (const s of symbols) this.active.delete(s);
    if (!ws || ws.readyState !== WebSocket.OPEN || symbols.length === 0) return;
    if (this.options.unsubscribeMessage === undefined) return;
    for (const m of this.messages(this.options.unsubscribeMessage, symbols)) this.send(ws, m);
  }

  /** The symbols wanted from now on: the new ones are subscribed, the others unsubscribed, at once. */
  setSymbols(symbols: string[]): void {
    const next = new Set([...(this.options.symbols ?? []), ...symbols]);
    const added = [...next].filter((s) => !this.desired.has(s));
    const removed = [...this.desired].filter((s) => !next.has(s));
    this.desired = next;
    this.sendSubscribe(added);
    this.sendUnsubscribe(removed);
  }

  health(): ConnectorHealth {
    const now = Date.now();
    const since = this.lastTickAt ?? this.startedAt;
    const stalenessMs = this.stopped ? null : now - since;
    const details: Record<string, unknown> = {
      url: redactUrl(this.options.url),
      topic: this.topic,
      connected: this.connectedAt !== null,
      connectedAt: this.connectedAt ? new Date(this.connectedAt).toISOString() : null,
      symbols: [...this.desired].sort(),
      activeSymbols: this.active.size,
      reconnects: this.counts.reconnects,
      ticksPerSecond: this.rate.perSecond(),
    };
    if (this.state === 'backing_off') details.retryInMs = Math.max(0, this.reconnectAt - now);
    return {
      state: this.stopped ? 'stopped' : this.state,
      lastSuccessAt: this.lastTickAt ? new Date(this.lastTickAt).toISOString() : null,
      lastError: this.lastError,
      stalenessMs,
      stale:
        stalenessMs !== null && this.desired.size > 0 && stalenessMs > (this.options.staleAfterMs ?? 60_000),
      details,
    };
  }

  metrics(): Record<string, number> {
    return {
      ticks_total: this.counts.ticks,
      depth_total: this.counts.depth,
      messages_total: this.counts.messages,
      reconnects_total: this.counts.reconnects,
      connects_total: this.counts.connects,
      parse_errors_total: this.counts.parseErrors,
      ticks_per_second: this.rate.perSecond(),
      symbols: this.desired.size,
      connected: this.connectedAt !== null ? 1 : 0,
    };
  }

  async stop(): Promise<void> {
    this.stopped = true;
    this.state = 'stopped';
    if (this.reconnectTimer) clearTimeout(this.reconnectTimer);
    if (this.heartbeatTimer) clearInterval(this.heartbeatTimer);
    this.reconnectTimer = null;
    this.heartbeatTimer = null;
    const ws = this.ws;
    this.ws = null;
    this.active.clear();
    if (!ws) return;
    if (ws.readyState === WebSocket.CLOSED) return;
    await new Promise<void>((resolve) => {
      const timer = setTimeout(() => {
        ws.terminate();
        resolve();
      }, 1000);
      ws.once('close', () => {
        clearTimeout(timer);
        resolve();
      });
      if (ws.readyState === WebSocket.CONNECTING) ws.terminate();
      else ws.close(1000, 'connector stopped');
    });
  }
}
