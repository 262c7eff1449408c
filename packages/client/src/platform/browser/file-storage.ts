/**
 * The browser's variant of `#platform/file-storage`: the same class name and shape, so one import line
 * works everywhere, but every call fails with STORAGE and says to use IndexedDbStorage. It keeps
 * `node:fs` out of browser bundles; it must never pretend to store anything.
 */
import { SyncClientError } from '../../errors.ts';
import type { QueuedMutation, QueueStorage } from '../../storage/types.ts';

function unavailable(path: string): SyncClientError {
  return new SyncClientError(
    'STORAGE',
    `FileStorage (${path}) needs Node's file system; in a browser use IndexedDbStorage`,
  );
}

export class FileStorage implements QueueStorage {
  constructor(readonly path: string) {}

  load(): Promise<QueuedMutation[]> {
    return Promise.reject(unavailable(this.path));
  }

  append(_entries: QueuedMutation[]): Promise<void> {
    return Promise.reject(unavailable(this.path));
  }

  remove(_mids: string[]): Promise<void> {
    return Promise.reject(unavailable(this.path));
  }

  close(): Promise<void> {
    return Promise.resolve();
  }
}
