/**
 * Queue and replica storage in memory: the default. Fit for clients that are online nearly always, and
 * for tests; everything is lost when the process (or browser tab) ends. Use FileStorage or
 * IndexedDbStorage to keep queued writes and the replica. A new client given the same instance (in the
 * same process) finds both, as it would on disk.
 */
import { ReplicaTable } from './replica-table.ts';
import type { ClientStorage, QueuedMutation, ReplicaState, ReplicaWrite } from './types.ts';

export class MemoryStorage implements ClientStorage {
  private entries: QueuedMutation[] = [];
  private readonly replica = new ReplicaTable();

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

  async loadReplica(scope: string): Promise<ReplicaState> {
    this.replica.useScope(scope);
    return this.replica.state();
  }

  async writeReplica(scope: string, write: ReplicaWrite): Promise<void> {
    if (this.replica.scope === scope) this.replica.apply(write);
  }

  async close(): Promise<void> {}
}
