/**
 * The client's public option, event and result types, and `httpBaseOf`: what `SyncClient` is configured
 * with and what it reports, kept apart from the class so the modules behind it can share them.
 */
import type { Conflict, DeviceInfo, DevicePending, Mutation, MutationResult } from '@syncbridge/protocol';
import type { BackoffOptions } from './backoff.ts';
import type { StatusChange, Transport } from './codes.ts';
import type { TokenSource } from './connection.ts';
import type { SyncClientError } from './errors.ts';
import type { QueueStorage } from './storage/types.ts';
import type { WebSocketConstructor } from './transport.ts';

export interface SyncClientOptions {
  /** The server's realtime endpoint, or several to fail over between in turn. */
  url: string | string[];
  /** A token, or a function returning a fresh one (called for every connection attempt). */
  token: TokenSource;
  /**
   * Where the offline queue and the replica live: `FileStorage` (Node), `IndexedDbStorage` (browsers),
   * or `MemoryStorage`, the default (lost when the process ends). A `QueueStorage` of your own without
   * the replica methods keeps the queue only.
   */
  storage?: QueueStorage;
  /**
   * Whose data the replica holds. Default: the token's `tenant` and `sub` claims (read without
   * verifying; a token function is called once at start for them). Give it when a token function cannot
   * answer offline, e.g. the signed-in user's id; a storage opened with another key wipes the replica.
   */
  replicaKey?: string;
  /** The replica's size limit; least recently used channels not subscribed now are evicted past it. Default 64 MiB. */
  replicaMaxBytes?: number;
  /**
   * Show a large replica a page first: at start, each collection's first `replicaFirstPage` records in
   * id order (and those with queued writes) go into the cache and to the first `storage` change at once,
   * and the rest follows in one more `storage` change a moment later; `whenLoaded()` resolves after it.
   * Until then `list()`/`get()` see the first page only; a write restores the rest first. Default: off
   * (everything in the first change).
   */
  replicaFirstPage?: number;
  /** A stable id for this installation; the server keeps its acknowledged cursor under it. */
  deviceId?: string;
  /**
   * Registers this installation as a device (needs `deviceId`) in every `hello`: type, name, platform,
   * app version, capabilities, and `categories`, the collections it syncs (the server refuses the
   * others' records channels with FORBIDDEN). Fields left out keep what the server has.
   */
  device?: DeviceInfo;
  /** Let the server send several events of a channel in one `events` frame. Default true. */
  batch?: boolean;
  /** Ask the server for permessage-deflate (frames of 1 KiB and more compressed). Default false. */
  compression?: boolean;
  /**
   * The server's HTTP base URL, for the few REST calls the client makes (a conflict's details when its
   * `conflict` frame was missed). Default: derived from the first `url` (ws→http, wss→https).
   */
  httpUrl?: string;
  /** Reconnect backoff: full jitter up to min(capMs, baseMs * 2^attempt). */
  backoff?: BackoffOptions;
  /** A WebSocket implementation; default the global one, else the `ws` package. */
  WebSocket?: WebSocketConstructor;
  /** Give up on a connection attempt not welcomed after this long. Default 10 s. */
  connectTimeoutMs?: number;
  /**
   * How to reach the server, in order of preference: `'websocket'` (GET /v1/realtime) and `'sse'`
   * (server-sent events at GET /v1/stream, writes over REST), for networks whose proxies refuse
   * WebSocket upgrades. Default `['websocket', 'sse']`: the next is tried when one fails before it is
   * welcomed, or is not welcomed within `fallbackTimeoutMs`; the first that works is kept for the session.
   */
  transports?: Transport[];
  /** With several `transports`: move on to the next after this long without a welcome. Default 5 s. */
  fallbackTimeoutMs?: number;
  /** A fetch implementation for the SSE transport; default the global one. */
  fetch?: typeof fetch;
  /** Connect at once (default), or wait for `connect()`. */
  autoConnect?: boolean;
  /**
   * The largest message the server accepts (its `SYNCBRIDGE_MAX_FRAME_BYTES`). Default 1 MiB, the
   * server's default. A larger write is refused at once with PAYLOAD_TOO_LARGE; batches stay below it.
   */
  maxMessageBytes?: number;
}

/** A write's outcome, as emitted by the `result` and `conflict` events. */
export interface WriteOutcome {
  mutation: Mutation;
  result: MutationResult;
}

/** What the server reported waiting for this device when it connected (`serverPending` is `count`). */
export type ServerPending = DevicePending & { deviceId: string };

/**
 * A catch-up window the server conflated for this device (`device.conflate: true`): of the channel's
 * backlog after `after` up to `through`, only the latest change of each record came; `skipped` earlier
 * versions were left out.
 */
export interface ConflatedCatchUp {
  channel: string;
  after: number;
  through: number;
  skipped: number;
}

export interface ClientEvents {
  status: StatusChange;
  result: WriteOutcome;
  /** A conflict of this user's writes is open: new, or shown again with a newer server side. */
  conflict: Conflict;
  /** A conflict was resolved (by this client, another device of the user, or an admin). */
  conflictResolved: Conflict;
  /** The server's count of what waits for this device after its cursor, on every connect. */
  pending: ServerPending;
  error: SyncClientError;
  /** A channel's catch-up skipped intermediate versions of its records (see `client.conflated`). */
  conflated: ConflatedCatchUp;
  /** The server could not resume a channel from our seq; records channels reload from a snapshot. */
  reset: { channel: string; reason: string };
  /**
   * The number of queued writes changed: a write was queued, answered or dropped, or writes were
   * restored from storage. `pendingCount` is `client.pendingCount()` at that moment.
   */
  queue: { pendingCount: number };
}

export interface PublishResult {
  seq: number;
  eventId: string;
  duplicate?: boolean;
}

export type Resolution = 'accept_local' | 'accept_server' | 'merge';

/** The HTTP base URL of a realtime URL: ws→http, wss→https, without the `/v1/realtime` path. */
export function httpBaseOf(url: string): string {
  const parsed = new URL(url);
  parsed.protocol = parsed.protocol === 'wss:' ? 'https:' : 'http:';
  parsed.pathname = parsed.pathname.replace(/\/v1\/realtime\/?$/, '') || '/';
  parsed.search = '';
  return parsed.toString().replace(/\/$/, '');
}
