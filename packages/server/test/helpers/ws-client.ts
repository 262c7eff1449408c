/**
 * A small protocol-level WebSocket client for tests: connects with a token, records every message,
 * and lets a test wait for the message it expects (with a timeout, so a missing message fails fast).
 */
import type { ServerMessage } from '@syncbridge/protocol';
import WebSocket from 'ws';

type AnyMessage = ServerMessage & Record<string, unknown>;

export class TestWsClient {
  readonly messages: AnyMessage[] = [];
  closeCode: number | null = null;
  closeReason = '';
  private waiters: Array<{ test: (m: AnyMessage) => boolean; resolve: (m: AnyMessage) => void }> = [];
  private nextRid = 1;
  readonly closed: Promise<number>;

  private constructor(readonly ws: WebSocket) {
    ws.on('message', (data) => {
      const message = JSON.parse(data.toString()) as AnyMessage;
      this.messages.push(message);
      this.waiters = this.waiters.filter((w) => {
        if (!w.test(message)) return true;
        w.resolve(message);
        return false;
      });
    });
    this.closed = new Promise((resolve) =>
      ws.on('close', (code, reason) => {
        this.closeCode = code;
        this.closeReason = reason.toString();
        resolve(code);
      }),
    );
    ws.on('error', () => undefined);
  }

  /** Opens a connection with `?token=` and waits for `welcome`. */
  static async connect(
    wsUrl: string,
    token?: string,
    headers: Record<string, string> = {},
  ): Promise<TestWsClient> {
    const ws = new WebSocket(token ? `${wsUrl}?token=${encodeURIComponent(token)}` : wsUrl, { headers });
    const client = new TestWsClient(ws);
    await new Promise<void>((resolve, reject) => {
      ws.once('open', () => resolve());
      ws.once('unexpected-response', (_req, res) =>
        reject(new Error(`upgrade refused: HTTP ${res.statusCode}`)),
      );
      ws.once('error', reject);
    });
    if (token) await client.waitFor((m) => m.type === 'welcome');
    return client;
  }

  send(message: unknown): void {
    this.ws.send(typeof message === 'string' ? message : JSON.stringify(message));
  }

  /** Waits for the first message (already received or future) that passes `test`. */
  waitFor(test: (m: AnyMessage) => boolean, timeoutMs = 15_000): Promise<AnyMessage> {
    const found = this.messages.find(test);
    if (found) return Promise.resolve(found);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.waiters = this.waiters.filter((w) => w.resolve !== done);
        reject(new Error(`timed out waiting for a message; got: ${JSON.stringify(this.messages.slice(-5))}`));
      }, timeoutMs);
      const done = (m: AnyMessage) => {
        clearTimeout(timer);
        resolve(m);
      };
      this.waiters.push({ test, resolve: done });
    });
  }

  /** Sends a message with a fresh rid and waits for the reply carrying it. */
  async request(message: Record<string, unknown>, timeoutMs = 15_000): Promise<AnyMessage> {
    const rid = `r${this.nextRid++}`;
    this.send({ ...message, rid });
    return this.waitFor((m) => m.rid === rid, timeoutMs);
  }

  /** The `event` messages received on a channel so far. */
  events(channel?: string): AnyMessage[] {
    return this.messages.filter(
      (m) => m.type === 'event' && (channel === undefined || m.channel === channel),
    );
  }

  /** Waits until `count` events arrived on the channel. */
  async waitForEvents(count: number, channel?: string, timeoutMs = 10_000): Promise<AnyMessage[]> {
    const deadline = Date.now() + timeoutMs;
    while (this.events(channel).length < count) {
      if (Date.now() > deadline)
        throw new Error(`expected ${count} events, got ${this.events(channel).length}`);
      await new Promise((r) => setTimeout(r, 10));
    }
    return this.events(channel);
  }

  /** Waits for the server to close the connection; resolves with the close code. */
  waitForClose(timeoutMs = 15_000): Promise<number> {
    return new Promise((resolve, reject) => {
      const timer = setTimeout(
        () => reject(new Error(`connection still open after ${timeoutMs} ms`)),
        timeoutMs,
      );
      void this.closed.then((code) => {
        clearTimeout(timer);
        resolve(code);
      });
    });
  }

  async close(): Promise<void> {
    if (this.ws.readyState === WebSocket.CLOSED) return;
    this.ws.close();
    await this.closed;
  }
}

/**
 * Tries a WebSocket upgrade and reports how the server refused it: the HTTP status and body.
 * Resolves null (and closes the socket) when the upgrade succeeded instead.
 */
export function upgradeRefusal(
  wsUrl: string,
  headers: Record<string, string> = {},
  timeoutMs = 15_000,
): Promise<{ status: number; body: string } | null> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(wsUrl, { headers });
    ws.on('error', () => undefined);
    const timer = setTimeout(() => {
      ws.terminate();
      reject(new Error(`no answer to the upgrade within ${timeoutMs} ms`));
    }, timeoutMs);
    ws.once('open', () => {
      clearTimeout(timer);
      ws.terminate();
      resolve(null);
    });
    ws.once('unexpected-response', (_req, res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => {
        body += chunk;
      });
      res.on('end', () => {
        clearTimeout(timer);
        resolve({ status: res.statusCode ?? 0, body });
      });
    });
    ws.once('error', (err) => {
      clearTimeout(timer);
      reject(err);
    });
  });
}
