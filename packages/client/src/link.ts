/**
 * The seam between the client and whatever carries its messages to the server. `SyncClient` talks only
 * to a `ClientLink`: it sends client messages, listens to status changes, the `welcome` and every later
 * server message, and says when it has caught up (`markSynced`). `Connection` (one WebSocket at a time,
 * see connection.ts) and `SseLink` (server-sent events, writes over REST: sse-link.ts) are the links;
 * `FallbackLink` (fallback-link.ts) tries them in turn.
 */
import type { ClientMessage, DeviceInfo, ServerMessage, WelcomeMessage } from '@syncbridge/protocol';
import type { BackoffOptions } from './backoff.ts';
import type { ConnectionState, StatusChange, Transport } from './codes.ts';

export type { Transport } from './codes.ts';

import { Connection, type TokenSource } from './connection.ts';
import type { TypedEventEmitter } from './emitter.ts';
import { FallbackLink } from './fallback-link.ts';
import { SseLink } from './sse-link.ts';
import type { WebSocketConstructor } from './transport.ts';

export interface LinkEvents {
  /** Every state transition, with its reason. */
  status: StatusChange;
  /** The server accepted `hello`: the link is `syncing`, and the client resumes its channels and queue. */
  welcome: WelcomeMessage;
  /** Every message the server sends after `welcome`, one event per message (batches unpacked). */
  message: ServerMessage;
}

/**
 * A connection to the server, whatever carries it. Its state moves offline → connecting → syncing →
 * open (after `markSynced`) and back to offline when it is lost; `closed` is terminal. A link reconnects
 * by itself (with backoff) until `disconnect()` or `close()`.
 */
export interface ClientLink {
  readonly events: TypedEventEmitter<LinkEvents>;
  /** The transport of the current (or next) connection. */
  readonly transport: Transport;
  readonly state: ConnectionState;
  /** True once the server has welcomed the current connection: requests can be sent. */
  readonly authenticated: boolean;
  /** Changes with every connection; ties asynchronous catch-up work to one connection. */
  readonly connectionEpoch: number;
  /** The token of the current (or last) connection attempt, for REST calls beside it. */
  readonly currentToken: string | null;
  /** Starts connecting when offline; does nothing when already connecting or connected. */
  connect(): void;
  /** Goes offline and stays so until `connect()`. */
  disconnect(): void;
  /** Closes for good. */
  close(): Promise<void>;
  /** Sends a message on the authenticated connection; false when there is none (nothing was sent). */
  send(message: ClientMessage): boolean;
  /** The client has caught up on connection `epoch`: `syncing` → `open`. */
  markSynced(epoch: number): void;
}

/** What every link is built from (the client's options that concern the connection). */
export interface LinkOptions {
  urls: string[];
  token: TokenSource;
  deviceId?: string;
  device?: DeviceInfo;
  /** Wire features named in `hello` (`batch`). */
  capabilities?: string[];
  compression?: boolean;
  backoff?: BackoffOptions;
  connectTimeoutMs?: number;
  WebSocket?: WebSocketConstructor;
  /** The transports to use, in order of preference. Default `['websocket', 'sse']`. */
  transports?: Transport[];
  /** Move on to the next transport when one has not been welcomed after this long. Default 5 s. */
  fallbackTimeoutMs?: number;
  /** A fetch implementation for the SSE transport; default the global one. */
  fetch?: typeof fetch;
}

/** One link of a transport. */
export function linkOf(transport: Transport, options: LinkOptions): ClientLink {
  return transport === 'sse' ? new SseLink(options) : new Connection(options);
}

/**
 * The link for these options: one transport's, or (several given, the default) a FallbackLink that
 * tries them in order until one works and keeps it for the session.
 */
export function createLink(options: LinkOptions): ClientLink {
  const transports = options.transports ?? ['websocket', 'sse'];
  if (transports.length === 0) throw new TypeError('transports: name at least one of websocket, sse');
  for (const t of transports)
    if (t !== 'websocket' && t !== 'sse') throw new TypeError(`transports: unknown transport ${String(t)}`);
  if (transports.length === 1) return linkOf(transports[0]!, options);
  return new FallbackLink(options, transports, linkOf);
}
