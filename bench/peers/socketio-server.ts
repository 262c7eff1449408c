/**
 * Socket.IO peer for the benchmarks: a room broadcast, as a Socket.IO application would write it.
 * A client `join`s a room (acknowledged); a `pub` from any client is emitted to everyone in the room,
 * acknowledged with its number in that room.
 * With RECOVERY=1 the server keeps Socket.IO's connection state recovery on (missed packets are kept
 * for two minutes and replayed to a client that comes back with its session id and offset).
 *
 *   PORT=0 RECOVERY=1 node --import tsx bench/peers/socketio-server.ts
 *
 * SIGUSR2 closes every client's underlying connection without a Socket.IO disconnect, as a network
 * failure or a load balancer would: clients reconnect by themselves and, with recovery on, resume.
 */
import { createServer } from 'node:http';
import { Server } from 'socket.io';

const recovery = process.env.RECOVERY === '1';
const httpServer = createServer();
const io = new Server(httpServer, {
  serveClient: false,
  transports: ['websocket'],
  perMessageDeflate: false,
  httpCompression: false,
  ...(recovery
    ? { connectionStateRecovery: { maxDisconnectionDuration: 120_000, skipMiddlewares: true } }
    : {}),
});

const sequences = new Map<string, number>();

io.on('connection', (socket) => {
  socket.on('join', (room: unknown, ack: unknown) => {
    if (typeof room !== 'string') return;
    void socket.join(room);
    if (typeof ack === 'function') ack(socket.recovered);
  });
  // The server numbers each room's messages (`n` in the payload), so subscribers can tell a lost or
  // repeated message from one the publisher never got through.
  socket.on('pub', (room: unknown, payload: unknown, ack: unknown) => {
    if (typeof room !== 'string') return;
    const n = (sequences.get(room) ?? 0) + 1;
    sequences.set(room, n);
    if (payload && typeof payload === 'object') (payload as { n: number }).n = n;
    io.to(room).emit('m', payload);
    if (typeof ack === 'function') ack(n);
  });
});

process.on('SIGUSR2', () => {
  for (const socket of io.sockets.sockets.values()) socket.conn.close();
});

httpServer.listen(Number(process.env.PORT ?? 0), '127.0.0.1', () => {
  const address = httpServer.address();
  const port = typeof address === 'object' && address ? address.port : address;
  process.stdout.write(
    `socket.io server (recovery ${recovery ? 'on' : 'off'}) listening on ws://127.0.0.1:${port}\n`,
  );
});

process.on('SIGTERM', () => {
  io.disconnectSockets(true);
  process.exit(0);
});
