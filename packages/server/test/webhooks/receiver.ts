/**
 * A local webhook receiver for the webhook suites: a real HTTP server on 127.0.0.1 that records every
 * request (raw body, headers, arrival time) and answers as the test says: a status with headers, after
 * a delay, or never (hang).
 */
import { createServer, type IncomingHttpHeaders, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

export interface ReceivedRequest {
  method: string;
  path: string;
  headers: IncomingHttpHeaders;
  body: string;
  at: number;
}

export interface Answer {
  status?: number;
  headers?: Record<string, string>;
  body?: string;
  delayMs?: number;
  /** Never answer (the connection stays open until the receiver closes). */
  hang?: boolean;
}

export type Handler = (req: ReceivedRequest, index: number) => Answer;

export class Receiver {
  readonly requests: ReceivedRequest[] = [];
  private handler: Handler = () => ({ status: 200 });
  private waiters: Array<() => void> = [];
  private readonly timers = new Set<NodeJS.Timeout>();

  private constructor(
    private readonly server: Server,
    readonly url: string,
  ) {}

  static async start(handler?: Handler): Promise<Receiver> {
    let self: Receiver | null = null;
    const server = createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () =>
        self!.handle(req.method ?? '', req.url ?? '', req.headers, Buffer.concat(chunks), res),
      );
    });
    server.keepAliveTimeout = 60_000;
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const { port } = server.address() as AddressInfo;
    self = new Receiver(server, `http://127.0.0.1:${port}/hook`);
    if (handler) self.handler = handler;
    return self;
  }

  /** Changes how the next requests are answered. */
  answer(handler: Handler): void {
    this.handler = handler;
  }

  private handle(
    method: string,
    path: string,
    headers: IncomingHttpHeaders,
    body: Buffer,
    res: ServerResponse,
  ): void {
    const req: ReceivedRequest = { method, path, headers, body: body.toString('utf8'), at: Date.now() };
    const index = this.requests.length;
    this.requests.push(req);
    const waiting = this.waiters;
    this.waiters = [];
    for (const w of waiting) w();
    const answer = this.handler(req, index);
    if (answer.hang) return;
    const send = () => {
      res.writeHead(answer.status ?? 200, { 'content-type': 'text/plain', ...(answer.headers ?? {}) });
      res.end(answer.body ?? 'ok');
    };
    if (answer.delayMs) {
      const t = setTimeout(() => {
        this.timers.delete(t);
        send();
      }, answer.delayMs);
      this.timers.add(t);
    } else send();
  }

  /** Resolves once `n` requests have arrived (in total), or fails after `timeoutMs`. */
  async waitFor(n: number, timeoutMs = 10_000): Promise<ReceivedRequest[]> {
    const deadline = Date.now() + timeoutMs;
    while (this.requests.length < n) {
      const left = deadline - Date.now();
      if (left <= 0)
        throw new Error(`receiver got ${this.requests.length} of ${n} requests in ${timeoutMs} ms`);
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, left);
        this.waiters.push(() => {
          clearTimeout(t);
          resolve();
        });
      });
    }
    return this.requests.slice(0, n);
  }

  /** Parsed JSON bodies of the requests received so far. */
  bodies<T = { id: string; type: string; seq: number; data: unknown }>(): T[] {
    return this.requests.map((r) => JSON.parse(r.body) as T);
  }

  async close(): Promise<void> {
    for (const t of this.timers) clearTimeout(t);
    this.server.closeAllConnections();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }
}

/** Polls `check` until it returns a value that is not undefined/false, or fails after `timeoutMs`. */
export async function eventually<T>(
  check: () => Promise<T | undefined | false> | T | undefined | false,
  timeoutMs = 10_000,
  what = 'condition',
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    try {
      const v = await check();
      if (v !== undefined && v !== false) return v as T;
    } catch (err) {
      last = err;
    }
    if (Date.now() > deadline) {
      throw new Error(
        `timed out after ${timeoutMs} ms waiting for ${what}${last ? `: ${String(last)}` : ''}`,
      );
    }
    await new Promise((r) => setTimeout(r, 25));
  }
}
