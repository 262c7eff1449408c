/**
 * Node's WebSocket when the runtime has no global one (Node 20): the `ws` package, loaded on first use.
 * Reached only through `#platform/websocket`, so a browser bundle never sees `ws`.
 */
import type { WebSocketConstructor } from '../../transport.ts';

export function loadWebSocket(): Promise<WebSocketConstructor> {
  return import('ws').then((mod) => mod.WebSocket as unknown as WebSocketConstructor);
}
