/**
 * The replica of one scope held in memory: records by collection and id, channels by name. Memory and
 * file storages keep their replica in one (the file storage also logs each change); it does no I/O.
 */
import type { ReplicaState, ReplicaWrite, StoredChannel, StoredRecord } from './types.ts';

export function recordKey(collection: string, id: string): string {
  return `${collection}\u0000${id}`;
}

export class ReplicaTable {
  scope: string | null = null;
  /** Records by collection, then id (no joined key to build per record: this is filled 100,000 at a time). */
  readonly records = new Map<string, Map<string, StoredRecord>>();
  readonly channels = new Map<string, StoredChannel>();

  /** Makes `scope` the one held, wiping another scope's records and channels. Returns true if it wiped. */
  useScope(scope: string): boolean {
    if (this.scope === scope) return false;
    const wiped = this.scope !== null && (this.records.size > 0 || this.channels.size > 0);
    this.clear();
    this.scope = scope;
    return wiped;
  }

  clear(): void {
    this.records.clear();
    this.channels.clear();
  }

  /** The records of a collection by id, made on first use (to set many records with one lookup). */
  collection(name: string): Map<string, StoredRecord> {
    let ids = this.records.get(name);
    if (!ids) {
      ids = new Map();
      this.records.set(name, ids);
    }
    return ids;
  }

  setRecord(record: StoredRecord): void {
    this.collection(record.collection).set(record.id, record);
  }

  deleteRecord(collection: string, id: string): void {
    const ids = this.records.get(collection);
    if (ids?.delete(id) && ids.size === 0) this.records.delete(collection);
  }

  apply(write: ReplicaWrite): void {
    for (const record of write.records) this.setRecord(record);
    for (const [collection, id] of write.forget) this.deleteRecord(collection, id);
    for (const channel of write.channels) this.channels.set(channel.channel, channel);
    for (const channel of write.dropChannels) this.channels.delete(channel);
  }

  state(): ReplicaState {
    const records: StoredRecord[] = [];
    for (const ids of this.records.values()) for (const record of ids.values()) records.push(record);
    return { records, channels: [...this.channels.values()] };
  }
}
