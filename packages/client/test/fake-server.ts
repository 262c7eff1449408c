/**
 * A protocol-level fake of the realtime endpoint, for the few client behaviours that need a failure
 * staged exactly (a server that repeats seqs, drops a connection before answering a batch). It speaks
 * the real wire protocol over a real `ws` server and records every client message; a test decides the
 * answers. Everything else is tested against the real server.
 */
import type { AddressInfo } from 'node:net';
import type { ClientMessage, ServerMessage } from '@syncbridge/protocol';
import { type WebSocket, WebSocketServer } from 'ws';

export interface Received {
  /** 1 for the first connection, 2 for the second, … */
  connection: number;
  message: ClientMessage;
}

type Handler = (message: ClientMessage, reply: (m: ServerMessage) => void, connection: number) => void;

export class FakeServer {
  readonly received: Received[] = [];
  private readonly sockets: WebSocket[] = [];
  private handler: Handler = () => undefined;

  private constructor(private readonly wss: WebSocketServer) {
    wss.on('connection', (ws) => {
      this.sockets.push(ws);
      const connection = this.sockets.length;
      const reply = (m: ServerMessage) => ws.send(JSON.stringify(m));
      ws.on('message', (data) => {
        const message = JSON.parse(data.toString()) as ClientMessage;
        this.received.push({ connection, message });
        if (message.type === 'hello') {
          reply({
            type: 'welcome',
            rid: message.rid,
            connectionId: `c${connection}`,
            tenant: 'acme',
            user: 'alice',
            roles: [],
            serverTime: new Date().toISOString(),
            heartbeatMs: 30_000,
            protocol: 1,
          });
        } else if (message.type === 'ping')
          reply({ type: 'pong', rid: message.rid, serverTime: new Date().toISOString() });
        else this.handler(message, reply, connection);
      });
    });
  }

  static async start(): Promise<FakeServer> {
    const wss = new WebSocketServer({ port: 0, host: '127.0.0.1' });
    await new Promise<void>((resolve) => wss.once('listening', () => resolve()));
    return new FakeServer(wss);
  }

  get url(): string {
    return `ws://127.0.0.1:${(this.wss.address() as AddressInfo).port}/v1/realtime`;
  }

  /** Decides how the server answers every message other than hello and ping. */
  onMessage(handler: Handler): void {
    this.handler = handler;
  }

  /** The messages of one type the client sent, in order. */
  messages<K extends ClientMessage['type']>(
    type: K,
  ): Array<Extract<ClientMessage, { type: K }> & { connection: number }> {
    return this.received
      .filter((r) => r.message.type === type)
      .map((r) => ({ ...(r.message as Extract<ClientMessage, { type: K }>), connection: r.connection }));
  }

  /** Cuts every connection without a close handshake, as a network failure would. */
  dropConnections(): void {
    for (const ws of this.sockets) ws.terminate();
  }

  async close(): Promise<void> {
    this.dropConnections();
    await new Promise<void>((resolve) => this.wss.close(() => resolve()));
  }
}
