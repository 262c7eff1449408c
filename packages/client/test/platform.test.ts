/**
 * The client's two `#platform/*` variants: the browser one never loads Node modules and fails
 * clearly (FileStorage with STORAGE, pointing at IndexedDbStorage; no WebSocket with a TypeError that
 * says which option to pass); the Node one loads `ws`.
 */
import { describe, expect, it } from 'vitest';
import { FileStorage as BrowserFileStorage } from '../src/platform/browser/file-storage.ts';
import { loadWebSocket as browserWebSocket } from '../src/platform/browser/websocket.ts';
import { loadWebSocket as nodeWebSocket } from '../src/platform/node/websocket.ts';

describe('the browser variants', () => {
  it('FileStorage refuses every call with STORAGE and names IndexedDbStorage', async () => {
    const storage = new BrowserFileStorage('./queue.json');
    for (const call of [() => storage.load(), () => storage.append([]), () => storage.remove(['m'])]) {
      await expect(call()).rejects.toMatchObject({
        name: 'SyncClientError',
        code: 'STORAGE',
        message: expect.stringContaining('IndexedDbStorage'),
      });
    }
    await expect(storage.close()).resolves.toBeUndefined();
  });

  it('has no WebSocket of its own and says to pass one', async () => {
    await expect(browserWebSocket()).rejects.toThrow(/pass one as the `WebSocket` option/);
  });
});

describe('the Node variant', () => {
  it('loads the ws package', async () => {
    const { WebSocket } = await import('ws');
    expect(await nodeWebSocket()).toBe(WebSocket);
  });
});
