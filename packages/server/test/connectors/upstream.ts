/**
 * A small local upstream for connector tests: an HTTP endpoint answering a pull connector's changes and
 * snapshot requests with empty pages, and a WebSocket feed on the same port. It records everything it
 * receives (request lines, headers, bodies, upgrade headers, messages), so a test can assert what a
 * connector sent out, and what it never did.
 */
import { createServer, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { WebSocketServer } from 'ws';

export interface Received {
  kind: 'http' | 'upgrade' | 'message';
  url: string;
  headers: Record<string, string | string[] | undefined>;
  body: string;
}

export class RecordingUpstream {
  readonly received: Received[] = [];
  private readonly wss = new WebSocketServer({ noServer: true });

  private constructor(
    private readonly server: Server,
    readonly httpUrl: string,
    readonly wsUrl: string,
  ) {}

  static async start(): Promise<RecordingUpstream> {
    let self: RecordingUpstream | null = null;
    const server = createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        self!.record('http', req, Buffer.concat(chunks).toString());
        res.writeHead(200, { 'content-type': 'application/json' });
        res.end(JSON.stringify({ accounts: [], transactions: [], cursor: 'c1', hasMore: false }));
      });
    });
    server.on('upgrade', (req, socket, head) => {
      self!.record('upgrade', req, '');
      self!.wss.handleUpgrade(req, socket, head, (ws) => {
        ws.on('message', (data: Buffer) => self!.record('message', req, data.toString()));
      });
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const { port } = server.address() as AddressInfo;
    self = new RecordingUpstream(server, `http://127.0.0.1:${port}`, `ws://127.0.0.1:${port}`);
    return self;
  }

  private record(kind: Received['kind'], req: IncomingMessage, body: string): void {
    this.received.push({ kind, url: req.url ?? '', headers: { ...req.headers }, body });
  }

  /** Everything received, as one string to search. */
  text(): string {
    return JSON.stringify(this.received);
  }

  async close(): Promise<void> {
    for (const ws of this.wss.clients) ws.terminate();
    this.wss.close();
    this.server.closeAllConnections();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }
}
