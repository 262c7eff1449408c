/**
 * The WebSocket gateway at `GET /v1/realtime`: authenticates the upgrade (or waits for `hello`), owns
 * the set of live connections (and of the server-sent-events streams of `GET /v1/stream`, which the
 * HTTP route hands it), and runs one sweep timer for all of them (heartbeat pings, idle and hello
 * timeouts, token expiry, cursor saves) instead of timers per connection.
 */
import { randomUUID } from 'node:crypto';
import type { IncomingMessage, Server, ServerResponse } from 'node:http';
import type { Duplex } from 'node:stream';
import { CLOSE_CODES, type Conflict, type Device } from '@syncbridge/protocol';
import { WebSocketServer } from 'ws';
import { soleCredential, TWO_CREDENTIALS } from '../auth/credentials.ts';
import { isTenantAdmin } from '../auth/principal.ts';
import type { VerifiedToken } from '../auth/tokens.ts';
import { SyncError, toPublicError } from '../core/errors.ts';
import { visibleConflict } from '../rules/conflicts.ts';
import { Connection, cursorKey } from './connection.ts';
import type { RealtimeContext } from './context.ts';
import { DeepSenders } from './deep-senders.ts';
import { SseStream, type StreamRequest } from './sse-stream.ts';

export const REALTIME_PATH = '/v1/realtime';

/**
 * permessage-deflate, for a connection that asks for it with `?compress=1` at the upgrade (and whose
 * client offers the extension, as browsers and `ws` do): frames of 1 KiB and more are compressed, smaller
 * ones (most events, every ping and ack) are not. Without `compress=1` the offer is ignored, so clients
 * that never asked pay no CPU for it. A small window and memory level keep a connection's compressor near
 * 16 KiB; it is only allocated once a large frame is sent.
 */
export const PER_MESSAGE_DEFLATE = {
  threshold: 1024,
  serverMaxWindowBits: 12,
  zlibDeflateOptions: { level: 1, memLevel: 5 },
  concurrencyLimit: 10,
} as const;

export interface ConnectionInfo {
  connectionId: string;
  tenant: string;
  user: string;
  deviceId?: string;
  connectedAt: string;
  channels: string[];
  remoteAddress?: string;
}

function rejectUpgrade(socket: Duplex, status: number, code: string, message: string): void {
  const body = JSON.stringify({ error: { code, message } });
  const reason =
    status === 401
      ? 'Unauthorized'
      : status === 403
        ? 'Forbidden'
        : status === 503
          ? 'Service Unavailable'
          : 'Not Found';
  socket.end(
    `HTTP/1.1 ${status} ${reason}\r\nContent-Type: application/json\r\nContent-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`,
  );
}

export class RealtimeGateway {
  private readonly wss: WebSocketServer;
  private readonly connections = new Map<string, Connection>();
  private readonly streams = new Map<string, SseStream>();
  private sweepTimer: NodeJS.Timeout | null = null;
  private accepting = true;
  private readonly deepSenders = new DeepSenders();
  /** Upgrades between their request and their open WebSocket (or refusal). */
  private upgrading = 0;
  private server: Server | null = null;
  /** Cursor saves in flight, by tenant, user and device. */
  private readonly cursorSaves = new Map<string, Promise<void>>();

  constructor(private readonly ctx: RealtimeContext) {
    this.wss = new WebSocketServer({
      noServer: true,
      // Frames up to 4x the limit are read and answered with PAYLOAD_TOO_LARGE; larger ones close with 1009.
      maxPayload: ctx.config.maxFrameBytes * 4,
      perMessageDeflate: PER_MESSAGE_DEFLATE,
      clientTracking: false,
    });
  }

  attach(server: Server): void {
    this.server = server;
    server.on('upgrade', (req: IncomingMessage, socket: Duplex, head: Buffer) => {
      socket.on('error', () => socket.destroy());
      // Connections and upgrades in progress count against maxConnections together; an upgrade that is
      // not done within upgradeTimeoutMs (a token check that hangs) is dropped.
      if (this.size + this.upgrading >= this.ctx.config.maxConnections) {
        this.ctx.metrics.overCapacity += 1;
        return rejectUpgrade(
          socket,
          503,
          'UNAVAILABLE',
          'the server is at its connection limit; retry later',
        );
      }
      this.upgrading += 1;
      const timer = setTimeout(() => socket.destroy(), this.ctx.config.upgradeTimeoutMs);
      void this.handleUpgrade(req, socket, head).finally(() => {
        clearTimeout(timer);
        this.upgrading -= 1;
      });
    });
    const interval = Math.min(this.ctx.config.heartbeatMs, 1000);
    this.sweepTimer = setInterval(() => void this.sweep(), interval);
    this.sweepTimer.unref();
  }

  private async handleUpgrade(req: IncomingMessage, socket: Duplex, head: Buffer): Promise<void> {
    const url = new URL(req.url ?? '/', 'http://localhost');
    if (url.pathname !== REALTIME_PATH)
      return rejectUpgrade(socket, 404, 'NOT_FOUND', 'no WebSocket endpoint here');
    if (!this.accepting) return rejectUpgrade(socket, 503, 'UNAVAILABLE', 'server is shutting down');
    const origin = req.headers.origin;
    if (origin && !this.originAllowed(origin)) {
      return rejectUpgrade(socket, 403, 'FORBIDDEN', `origin ${origin} is not allowed`);
    }
    let verified: VerifiedToken | null = null;
    try {
      // One token: `?token=` or `Authorization: Bearer`, the same if both (auth/credentials.ts).
      const tokens = url.searchParams.getAll('token');
      if (new Set(tokens).size > 1) throw new SyncError('UNAUTHORIZED', TWO_CREDENTIALS);
      const credential = soleCredential({
        authorization: req.headers.authorization,
        queryToken: tokens[0],
      });
      if (credential?.kind === 'token') verified = await this.ctx.tokens.verify(credential.token);
    } catch (err) {
      return rejectUpgrade(socket, 401, 'UNAUTHORIZED', toPublicError(err).message);
    }
    if (socket.destroyed) return;
    if (url.searchParams.get('compress') !== '1') delete req.headers['sec-websocket-extensions'];
    this.wss.handleUpgrade(req, socket, head, (ws) => {
      const conn = new Connection(
        randomUUID(),
        ws,
        this.ctx,
        req.socket.remoteAddress,
        (key) => this.cursorSaves.get(key),
        this.deepSenders,
      );
      this.connections.set(conn.id, conn);
      ws.on('message', (data: Buffer, isBinary: boolean) => {
        if (isBinary) conn.handleBinary(data);
        else conn.handleFrame(data);
      });
      ws.on('pong', () => {
        conn.lastSeen = Date.now();
      });
      ws.on('error', () => undefined);
      ws.on('close', () => {
        this.connections.delete(conn.id);
        conn.dispose();
        if (conn.ackDirty) void this.saveCursor(conn);
      });
      if (verified) {
        const deviceId = url.searchParams.get('deviceId') ?? undefined;
        if (deviceId !== undefined && !/^[A-Za-z0-9_.:-]{1,128}$/.test(deviceId)) {
          conn.sendError(new SyncError('BAD_REQUEST', 'deviceId must be 1-128 letters, digits or _.:-'));
          conn.close(CLOSE_CODES.POLICY, 'bad deviceId');
          return;
        }
        conn.authenticateAtUpgrade(verified.principal, verified.expiresAt, deviceId).catch((err: unknown) => {
          conn.sendError(err);
          // Not authenticated after all: the connection ends (1013 when a retry later may succeed).
          const code = toPublicError(err).code;
          if (code === 'RATE_LIMITED' || code === 'UNAVAILABLE' || code === 'INTERNAL') {
            conn.close(
              CLOSE_CODES.TRY_AGAIN_LATER,
              code === 'RATE_LIMITED' ? 'too many connections' : 'try again later',
            );
          } else conn.close(CLOSE_CODES.POLICY, 'not authenticated');
        });
      }
    });
  }

  /** Whether a browser page of `origin` may connect (config `allowedOrigins`; empty: any). */
  originAllowed(origin: string): boolean {
    const allowed = this.ctx.config.allowedOrigins;
    return allowed.length === 0 || allowed.includes(origin) || allowed.includes('*');
  }

  /** Why a new SSE stream cannot be opened now (shutting down, at the connection limit), or null. */
  refuseStream(): SyncError | null {
    if (!this.accepting) return new SyncError('UNAVAILABLE', 'server is shutting down');
    if (this.size + this.upgrading >= this.ctx.config.maxConnections) {
      this.ctx.metrics.overCapacity += 1;
      return new SyncError('UNAVAILABLE', 'the server is at its connection limit; retry later');
    }
    return null;
  }

  /** Serves an authenticated SSE stream on `res` (headers already sent) until either side ends it. */
  openStream(res: ServerResponse, request: StreamRequest): Promise<void> {
    const stream = new SseStream(randomUUID(), res, this.ctx, request, (key) => this.cursorSaves.get(key));
    this.streams.set(stream.id, stream);
    res.on('close', () => {
      this.streams.delete(stream.id);
      stream.dispose();
    });
    return stream.start();
  }

  /** Every WebSocket connection and SSE stream. */
  private *all(): Iterable<Connection | SseStream> {
    yield* this.connections.values();
    yield* this.streams.values();
  }

  private async saveCursor(conn: Connection): Promise<void> {
    conn.ackDirty = false;
    // Only a named device can read its cursor again (welcome.cursor, pending); a connection without a
    // deviceId keeps its acks in memory, so the table does not grow by a row per anonymous connection.
    if (!conn.principal || !conn.deviceId) return;
    const device = conn.deviceId;
    // A save in flight is remembered until it lands, so a reconnect of the same device (which may
    // arrive before it does) reads the cursor after it rather than a stale one.
    const { tenant, user } = conn.principal;
    const key = cursorKey(tenant, user, device);
    const save = this.cursorToSave(conn)
      .then((seq) => this.ctx.store.saveCursor(tenant, user, device, seq))
      .catch((err: unknown) => {
        conn.ackDirty = true;
        this.ctx.logger.warn({ err }, 'could not save a cursor');
      });
    this.cursorSaves.set(key, save);
    await save;
    if (this.cursorSaves.get(key) === save) this.cursorSaves.delete(key);
  }

  /**
   * The seq to store for a connection's ack: as acked, or, when it is beyond every seq the connection
   * was sent, at most the log's head (the cursor only rises, so one past the head would hide from the
   * device everything written after it). A clamped ack is answered with an error while the client is
   * still connected.
   */
  private async cursorToSave(conn: Connection): Promise<number> {
    const acked = conn.ackedSeq;
    if (!conn.ackUnverified) return acked;
    const head = await this.ctx.store.headSeq(conn.principal!.tenant);
    if (acked <= head) {
      if (conn.ackedSeq === acked) conn.ackUnverified = false;
      return acked;
    }
    if (conn.ackedSeq === acked) {
      conn.ackedSeq = head;
      conn.ackUnverified = false;
    }
    conn.sendError(
      new SyncError('BAD_REQUEST', `ack ${acked} is beyond the log's head (${head}); the cursor is ${head}`),
    );
    return head;
  }

  private sweeps = 0;

  private async sweep(): Promise<void> {
    const now = Date.now();
    // Health to operators every other sweep (about every 2 s): on connect, then on change.
    if (this.ctx.health && ++this.sweeps % 2 === 0) void this.ctx.health.tick(this.connections.values());
    const { heartbeatMs, idleTimeoutMs, helloTimeoutMs } = this.ctx.config;
    for (const conn of this.connections.values()) {
      if (!conn.principal) {
        if (now - conn.connectedAt > helloTimeoutMs) {
          conn.sendError(new SyncError('UNAUTHORIZED', 'no hello within the time allowed'));
          conn.close(CLOSE_CODES.HELLO_TIMEOUT, 'hello timeout');
        }
        continue;
      }
      if (now - conn.lastSeen > idleTimeoutMs) {
        conn.close(CLOSE_CODES.IDLE_TIMEOUT, 'idle timeout');
        continue;
      }
      if (conn.expiresAt !== null && now >= conn.expiresAt) {
        conn.sendError(new SyncError('UNAUTHORIZED', 'token expired; reconnect with a fresh token'));
        conn.close(CLOSE_CODES.POLICY, 'token expired');
        continue;
      }
      if (now - conn.lastSeen >= heartbeatMs && now - conn.lastPingAt >= heartbeatMs) {
        conn.lastPingAt = now;
        conn.ping();
      }
      if (conn.ackDirty) await this.saveCursor(conn);
    }
    for (const stream of this.streams.values()) {
      if (stream.expiresAt !== null && now >= stream.expiresAt) {
        stream.sendError(new SyncError('UNAUTHORIZED', 'token expired; reconnect with a fresh token'));
        stream.close(CLOSE_CODES.POLICY, 'token expired');
      } else if (now - stream.writer.lastWriteAt >= heartbeatMs) stream.writer.heartbeat();
    }
  }

  /** Sends stored or resolved conflicts to their writers' connections and to the tenant's admins. */
  notifyConflicts(tenant: string, conflicts: Conflict[]): void {
    for (const conn of this.all()) {
      const p = conn.principal;
      if (p?.tenant !== tenant) continue;
      const admin = isTenantAdmin(p);
      for (const conflict of conflicts) {
        if (!admin && conflict.actor !== p.user) continue;
        // Access rules: the writer sees it only while it may read the record, hidden fields removed.
        const shown = visibleConflict(p, this.ctx.collections.peek(tenant, conflict.collection), conflict);
        if (shown) conn.send({ type: 'conflict', conflict: shown });
      }
    }
  }

  /** A device's registration changed: its live connections take its new categories at once. */
  deviceChanged(tenant: string, device: Device): void {
    for (const conn of this.all()) {
      const p = conn.principal;
      if (p?.tenant === tenant && p.user === device.user && conn.deviceId === device.id) {
        conn.setCategories(device.categories);
      }
    }
  }

  list(tenant: string): ConnectionInfo[] {
    const out: ConnectionInfo[] = [];
    for (const conn of this.all()) {
      if (conn.principal?.tenant !== tenant) continue;
      const info: ConnectionInfo = {
        connectionId: conn.id,
        tenant,
        user: conn.principal.user,
        connectedAt: new Date(conn.connectedAt).toISOString(),
        channels: [...conn.subscriptions.keys()],
      };
      if (conn.deviceId) info.deviceId = conn.deviceId;
      if (conn.remoteAddress) info.remoteAddress = conn.remoteAddress;
      out.push(info);
    }
    return out;
  }

  get size(): number {
    return this.connections.size + this.streams.size;
  }

  /** The bytes each open connection has sent that the network has not taken yet (read by metrics). */
  unsentBytes(): number[] {
    const out: number[] = [];
    for (const conn of this.all()) out.push(conn.outboundBytes());
    return out;
  }

  /** Stops accepting, tells every client to go away (they resume elsewhere), and saves their cursors. */
  async close(): Promise<void> {
    this.accepting = false;
    // Stop listening first: the clients told to go away come back at once, and while this process drains
    // the kernel refuses them, instead of this process reading and refusing thousands of upgrades.
    this.server?.close();
    if (this.sweepTimer) clearInterval(this.sweepTimer);
    const conns = [...this.connections.values()];
    await Promise.all(conns.filter((c) => c.ackDirty).map((c) => this.saveCursor(c)));
    for (const conn of conns) conn.close(CLOSE_CODES.GOING_AWAY, 'server shutting down');
    for (const stream of this.streams.values()) stream.close(CLOSE_CODES.GOING_AWAY, 'server shutting down');
    const deadline = Date.now() + 2000;
    while (this.size > 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
    for (const conn of this.all()) conn.terminate();
  }
}
