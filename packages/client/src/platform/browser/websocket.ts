/**
 * Browsers (and every runtime that is not Node) have a global WebSocket, which transport.ts uses before
 * it gets here; this variant of `#platform/websocket` only explains what is missing, and never imports `ws`.
 */
import type { WebSocketConstructor } from '../../transport.ts';

export function loadWebSocket(): Promise<WebSocketConstructor> {
  return Promise.reject(
    new TypeError('this runtime has no global WebSocket: pass one as the `WebSocket` option of SyncClient'),
  );
}
