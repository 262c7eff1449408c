/**
 * Queue storage in memory: the default. Fit for clients that are online nearly always, and for tests;
 * queued writes are lost when the process (or browser tab) ends. Use FileStorage or IndexedDbStorage to keep them.
 */
import type { QueuedMutation, QueueStorage } from './types.ts';

export class MemoryStorage implements QueueStorage {
  private entries: QueuedMutation[] = [];

  async load(): Promise<QueuedMutation[]> {
    return [...this.entries];
  }

  async append(entries: QueuedMutation[]): Promise<void> {
    this.entries.push(...entries);
  }

  async remove(mids: string[]): Promise<void> {
    const gone = new Set(mids);
    this.entries = this.entries.filter((e) => !gone.has(e.mid));
  }

  async close(): Promise<void> {}
}
