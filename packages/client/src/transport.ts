/**
 * The WebSocket the client speaks through: the browser's (or the runtime's) global `WebSocket` when
 * there is one, else the `ws` package, loaded lazily through `#platform/websocket` (package.json
 * `imports`), whose browser variant never imports it, so a browser bundle never sees `ws`.
 * Only the browser-style API is used (`onopen`, `onmessage`, `onclose`, `onerror`), which both provide.
 */
import { loadWebSocket } from '#platform/websocket';

export interface WebSocketLike {
  readonly readyState: number;
  send(data: string): void;
  close(code?: number, reason?: string): void;
  onopen: ((event: unknown) => void) | null;
  onmessage: ((event: { data: unknown }) => void) | null;
  onclose: ((event: { code: number; reason: string }) => void) | null;
  onerror: ((event: unknown) => void) | null;
}

export type WebSocketConstructor = new (url: string) => WebSocketLike;

export const WS_OPEN = 1;

let nodeWebSocket: Promise<WebSocketConstructor> | null = null;

/** The given constructor, else the global one, else `ws`. */
export function resolveWebSocket(given?: WebSocketConstructor): Promise<WebSocketConstructor> {
  if (given) return Promise.resolve(given);
  const global = (globalThis as { WebSocket?: WebSocketConstructor }).WebSocket;
  if (global) return Promise.resolve(global);
  nodeWebSocket ??= loadWebSocket();
  return nodeWebSocket;
}

/** The text of a message event: browsers give a string for text frames; `ws` may give a Buffer. */
export function frameText(data: unknown): string {
  return typeof data === 'string' ? data : String(data);
}
