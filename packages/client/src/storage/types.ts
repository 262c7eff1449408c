/**
 * Where the offline queue lives. A storage keeps queued mutations in the order they were appended and
 * must have them durably before `append` resolves: the client sends a mutation only after that, so a
 * write the application was told is queued survives a crash or a restart.
 */
import type { Mutation } from '@syncbridge/protocol';

export interface QueuedMutation {
  mid: string;
  mutation: Mutation;
  /** ISO time it was queued. */
  queuedAt: string;
}

export interface QueueStorage {
  /** Everything still queued, oldest first. Called once, before any other method. */
  load(): Promise<QueuedMutation[]>;
  append(entries: QueuedMutation[]): Promise<void>;
  remove(mids: string[]): Promise<void>;
  close(): Promise<void>;
}
