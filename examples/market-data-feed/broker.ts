/**
 * A simulated broker feed: a small WebSocket server speaking a protocol like many brokers' market-data
 * feeds, for the example and its tests.
 *
 * - Upgrade with `Authorization: Bearer <token>` (refused with 401 otherwise).
 * - Client -> broker: `{"action":"subscribe","symbols":[...]}`, `{"action":"unsubscribe","symbols":[...]}`,
 *   `{"action":"ping"}` (answered `{"type":"pong"}`).
 * - Broker -> client, for subscribed symbols only: `{"type":"ltp","symbol","ltp","volume","timestamp"}` and
 *   `{"type":"depth","symbol","bids":[[price,qty]...],"asks":[...],"timestamp"}`.
 *
 * `drop()` cuts every connection (as a network failure would), `refuse(true)` turns new connections
 * away with 503 until `refuse(false)`, and `stream()` sends a random walk of prices for every
 * subscribed symbol.
 */
import type { IncomingMessage } from 'node:http';
import { type WebSocket, WebSocketServer } from 'ws';

export interface BrokerOptions {
  port?: number;
  token?: string;
}

export interface SimulatedBroker {
  url: string;
  /** Open client connections. */
  connections(): number;
  /** Symbols subscribed on some connection. */
  subscribed(): string[];
  /** Every message clients sent, in order. */
  received: Array<{ action: string; symbols?: string[] }>;
  /** Resolves once every symbol given is subscribed on an open connection. */
  waitForSubscribed(symbols: string[], timeoutMs?: number): Promise<void>;
  /** Resolves once `n` connections have been accepted since start. */
  waitForConnections(n: number, timeoutMs?: number): Promise<void>;
  /** Sends a price to the connections subscribed to the symbol; returns how many got it. */
  tick(symbol: string, ltp: number, extra?: { volume?: number; timestamp?: number; note?: string }): number;
  depth(symbol: string, bids: [number, number][], asks: [number, number][]): number;
  /** Cuts every connection without a close handshake. */
  drop(): void;
  /** While true, new connections are refused with HTTP 503. */
  refuse(on: boolean): void;
  /** While true, the broker stalls: it answers nothing (no pong, no ack) and reads client messages later. */
  mute(on: boolean): void;
  /** Sends a random walk of prices every `intervalMs`; returns a function that stops it. */
  stream(intervalMs: number): () => void;
  /** Connections accepted since start. */
  accepted: number;
  close(): Promise<void>;
}

export async function startSimulatedBroker(options: BrokerOptions = {}): Promise<SimulatedBroker> {
  let refusing = false;
  let muted = false;
  const stalled: Array<() => void> = [];
  const subs = new Map<WebSocket, Set<string>>();
  const received: SimulatedBroker['received'] = [];
  const prices = new Map<string, number>();
  let accepted = 0;
  const wss = new WebSocketServer({
    host: '127.0.0.1',
    port: options.port ?? 0,
    verifyClient: (info: { req: IncomingMessage }, done: (ok: boolean, code?: number) => void) => {
      if (refusing) return done(false, 503);
      if (options.token && info.req.headers.authorization !== `Bearer ${options.token}`)
        return done(false, 401);
      done(true);
    },
  });
  await new Promise<void>((resolve) => wss.once('listening', () => resolve()));
  const address = wss.address();
  const port = typeof address === 'object' && address ? address.port : 0;

  wss.on('connection', (ws) => {
    accepted += 1;
    const mine = new Set<string>();
    subs.set(ws, mine);
    // WebSocket pings are answered by the library; a muted broker must not answer those either.
    const pong = ws.pong.bind(ws);
    ws.pong = (...args: Parameters<typeof ws.pong>) => {
      if (!muted) pong(...args);
    };
    const handle = (data: Buffer) => {
      let msg: { action?: string; symbols?: unknown };
      try {
        msg = JSON.parse(data.toString()) as typeof msg;
      } catch {
        ws.send(JSON.stringify({ type: 'error', message: 'not JSON' }));
        return;
      }
      const symbols = Array.isArray(msg.symbols) ? msg.symbols.map(String) : [];
      received.push({ action: String(msg.action), symbols });
      if (msg.action === 'subscribe') for (const s of symbols) mine.add(s);
      else if (msg.action === 'unsubscribe') for (const s of symbols) mine.delete(s);
      else if (msg.action === 'ping') ws.send(JSON.stringify({ type: 'pong' }));
      if (msg.action === 'subscribe' || msg.action === 'unsubscribe') {
        ws.send(JSON.stringify({ type: 'ack', action: msg.action, symbols }));
      }
    };
    ws.on('message', (data: Buffer) => {
      if (muted) stalled.push(() => handle(data));
      else handle(data);
    });
    ws.on('close', () => subs.delete(ws));
    ws.on('error', () => undefined);
  });

  const send = (symbol: string, message: Record<string, unknown>): number => {
    const text = JSON.stringify(message);
    let n = 0;
    for (const [ws, mine] of subs) {
      if (ws.readyState === 1 && mine.has(symbol)) {
        ws.send(text);
        n += 1;
      }
    }
    return n;
  };

  const waitUntil = async (test: () => boolean, what: string, timeoutMs: number) => {
    const deadline = Date.now() + timeoutMs;
    while (!test()) {
      if (Date.now() > deadline) throw new Error(`broker: timed out waiting for ${what}`);
      await new Promise((r) => setTimeout(r, 5));
    }
  };

  const subscribed = () => {
    const all = new Set<string>();
    for (const [ws, mine] of subs) if (ws.readyState === 1) for (const s of mine) all.add(s);
    return [...all].sort();
  };

  return {
    url: `ws://127.0.0.1:${port}/feed`,
    connections: () => [...subs.keys()].filter((ws) => ws.readyState === 1).length,
    subscribed,
    received,
    get accepted() {
      return accepted;
    },
    waitForSubscribed: (symbols, timeoutMs = 5000) =>
      waitUntil(
        () => symbols.every((s) => subscribed().includes(s)),
        `subscriptions to ${symbols.join(', ')}`,
        timeoutMs,
      ),
    waitForConnections: (n, timeoutMs = 5000) =>
      waitUntil(() => accepted >= n, `${n} connection(s)`, timeoutMs),
    tick: (symbol, ltp, extra = {}) => {
      prices.set(symbol, ltp);
      const message: Record<string, unknown> = {
        type: 'ltp',
        symbol,
        ltp,
        volume: extra.volume ?? 100,
        timestamp: extra.timestamp ?? Date.now(),
      };
      if (extra.note !== undefined) message.note = extra.note;
      return send(symbol, message);
    },
    depth: (symbol, bids, asks) => send(symbol, { type: 'depth', symbol, bids, asks, timestamp: Date.now() }),
    drop: () => {
      for (const ws of subs.keys()) ws.terminate();
    },
    refuse: (on) => {
      refusing = on;
    },
    mute: (on) => {
      muted = on;
      if (!on) for (const fn of stalled.splice(0)) fn();
    },
    stream: (intervalMs) => {
      const timer = setInterval(() => {
        for (const symbol of subscribed()) {
          const last = prices.get(symbol) ?? 100 + Math.round(Math.random() * 2000);
          const next = Math.max(1, Math.round((last + (Math.random() - 0.5) * last * 0.002) * 100) / 100);
          prices.set(symbol, next);
          send(symbol, {
            type: 'ltp',
            symbol,
            ltp: next,
            volume: 1 + Math.floor(Math.random() * 500),
            timestamp: Date.now(),
          });
          send(symbol, {
            type: 'depth',
            symbol,
            bids: [
              [Math.round((next - 0.05) * 100) / 100, 100],
              [Math.round((next - 0.1) * 100) / 100, 250],
            ],
            asks: [
              [Math.round((next + 0.05) * 100) / 100, 120],
              [Math.round((next + 0.1) * 100) / 100, 300],
            ],
            timestamp: Date.now(),
          });
        }
      }, intervalMs);
      return () => clearInterval(timer);
    },
    close: async () => {
      for (const ws of subs.keys()) ws.terminate();
      await new Promise<void>((resolve) => wss.close(() => resolve()));
    },
  };
}

/** The syncbridge connector definition for this broker (config file `connectors.instances`, or REST). */
export function brokerFeedSpec(options: { name: string; tenant: string; url: string; token: string }) {
  return {
    name: options.name,
    tenant: options.tenant,
    kind: 'ws-feed',
    url: options.url,
    headers: { Authorization: `Bearer ${options.token}` },
    subscribeMessage: { action: 'subscribe', symbols: '{{symbols}}' },
    unsubscribeMessage: { action: 'unsubscribe', symbols: '{{symbols}}' },
    heartbeat: { intervalMs: 1000, timeoutMs: 3000, message: { action: 'ping' } },
    reconnect: { initialMs: 50, maxMs: 1000 },
    parse: {
      tick: {
        match: { type: 'ltp' },
        symbol: 'symbol',
        price: 'ltp',
        volume: 'volume',
        ts: 'timestamp',
        fields: { note: 'note' },
      },
      depth: { match: { type: 'depth' }, symbol: 'symbol', bids: 'bids', asks: 'asks', ts: 'timestamp' },
    },
  };
}
