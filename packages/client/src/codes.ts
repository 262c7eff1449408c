/**
 * Why the connection changed state. Every transition of the connection state machine carries one of
 * these codes, so an application (or a test) can tell a planned close from a lost network, a dead
 * server from an expired token. Codes are stable strings; new ones may be added, none changes meaning.
 */

/** The states of a client's connection; see `connection.ts` for the transitions. */
export type ConnectionState = 'connecting' | 'syncing' | 'open' | 'offline' | 'closed';

export const StatusReason = {
  /** `connect()` was called (or the client started on its own). */
  CONNECT_CALLED: 'connect_called',
  /** The backoff timer fired: another connection attempt. */
  RECONNECT: 'reconnect',
  /** The server accepted the token (`welcome`); subscriptions and the offline queue are catching up. */
  AUTHENTICATED: 'authenticated',
  /** Every subscription is resumed and the offline queue replayed: the client is in sync. */
  SYNCED: 'synced',
  /** The socket could not be opened (refused, DNS, TLS, HTTP error at the upgrade). */
  CONNECT_FAILED: 'connect_failed',
  /** No `welcome` within the connect timeout. */
  CONNECT_TIMEOUT: 'connect_timeout',
  /** The socket closed (server restart, network loss); `closeCode` says how. */
  TRANSPORT_CLOSED: 'transport_closed',
  /** Nothing arrived for twice the server's heartbeat interval: the connection is presumed dead. */
  NO_MESSAGE_TIMEOUT: 'no_message_timeout',
  /** A client `ping` got no `pong` in time. */
  PONG_TIMEOUT: 'pong_timeout',
  /** The server said the token expired; the client fetches a fresh one from the token provider. */
  TOKEN_EXPIRED: 'token_expired',
  /** The server refused the token; the client asks the token provider once more before giving up. */
  TOKEN_REFRESH: 'token_refresh',
  /** The server refused the token (and a fresh one, if there is a provider): the client stops. */
  UNAUTHORIZED: 'unauthorized',
  /** The token provider threw or returned something that is not a token. */
  TOKEN_PROVIDER_FAILED: 'token_provider_failed',
  /** The application called `disconnect()`: offline until `connect()`. */
  CLIENT_DISCONNECTED: 'client_disconnected',
  /** The application called `close()`. */
  CLIENT_CLOSED: 'client_closed',
} as const;

export type StatusReason = (typeof StatusReason)[keyof typeof StatusReason];

/** What carries a connection: a WebSocket, or server-sent events with writes over REST. */
export type Transport = 'websocket' | 'sse';

/** Payload of the `status` event. */
export interface StatusChange {
  /** The transport of the connection the transition concerns. */
  transport?: Transport;
  newState: ConnectionState;
  oldState: ConnectionState;
  reason: StatusReason;
  /** The WebSocket close code, when the transition was caused by a close. */
  closeCode?: number;
  /** Human-readable detail: the server's close reason or error message. */
  message?: string;
  /** The server URL the transition concerns. */
  url?: string;
}
