/**
 * The reference for fan-out figures: the smallest useful `ws` broadcast server. Every message a client
 * sends is sent, as the same bytes, to every other open client. No auth, no log, no ordering, no
 * durability: what syncbridge costs beyond this is the price of its guarantees.
 */
import { WebSocket, WebSocketServer } from 'ws';

const wss = new WebSocketServer({
  host: '127.0.0.1',
  port: Number(process.env.PORT ?? 0),
  perMessageDeflate: false,
});

wss.on('connection', (ws) => {
  ws.on('error', () => undefined);
  ws.on('message', (data: Buffer, isBinary: boolean) => {
    for (const client of wss.clients) {
      if (client !== ws && client.readyState === WebSocket.OPEN) client.send(data, { binary: isBinary });
    }
  });
});

wss.on('listening', () => {
  const address = wss.address();
  const port = typeof address === 'object' && address ? address.port : address;
  process.stdout.write(`ws reference broadcast server listening on ws://127.0.0.1:${port}\n`);
});

process.on('SIGTERM', () => {
  for (const client of wss.clients) client.terminate();
  process.exit(0);
});
